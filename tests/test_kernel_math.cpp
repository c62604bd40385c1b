// CPU tests of the arithmetic the CUDA kernels run: Philox and its normals, the accept test,
// the log-mean-exp reduction, and the packed MAF row engine (common/maf_rows.hpp), which is
// checked against the CPU MAF in the same strided layout a GPU block uses. These run on every
// machine, so the kernels' math is exercised without a GPU.
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/maf.hpp"

#include "common/accept.hpp"
#include "common/kernel_plan.hpp"
#include "common/maf_pack.hpp"
#include "common/maf_rows.hpp"
#include "common/philox.hpp"
#include "maf_test_support.hpp"

namespace nfcal {
namespace {

using testing::random_dense_flow;

// --- Philox ----------------------------------------------------------------------------------

void expect_words(rng::Words4 counter, std::uint32_t key0, std::uint32_t key1,
                  const std::uint32_t (&expected)[4]) {
  const rng::Words4 out = rng::philox4x32_10(counter, key0, key1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out.w[i], expected[i]) << "word " << i;
}

TEST(KernelMathPhilox, MatchesTheRandom123KnownAnswerVectors) {
  // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
  expect_words({{0, 0, 0, 0}}, 0, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  expect_words({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
               {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  expect_words({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
               {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST(KernelMathPhilox, KeyedWordsUseEveryBitOfSeedAndIndex) {
  const rng::Words4 base = rng::keyed_words(7, 5, 0, rng::kStreamBaseNoise);
  const rng::Words4 high_index =
      rng::keyed_words(7, 5 + (std::uint64_t(1) << 32), 0, rng::kStreamBaseNoise);
  const rng::Words4 high_seed =
      rng::keyed_words(7 + (std::uint64_t(1) << 32), 5, 0, rng::kStreamBaseNoise);
  const rng::Words4 other_stream = rng::keyed_words(7, 5, 0, rng::kStreamAccept);
  const rng::Words4 other_block = rng::keyed_words(7, 5, 1, rng::kStreamBaseNoise);
  for (const rng::Words4& w : {high_index, high_seed, other_stream, other_block}) {
    EXPECT_NE(w.w[0], base.w[0]);
  }
  // The documented counter layout: (index low, index high, block, stream), key = seed.
  const rng::Words4 direct = rng::philox4x32_10({{5, 0, 0, rng::kStreamBaseNoise}}, 7, 0);
  EXPECT_EQ(direct.w[0], base.w[0]);
  EXPECT_EQ(direct.w[3], base.w[3]);
}

TEST(KernelMathPhilox, UniformsStayStrictlyInsideTheUnitInterval) {
  // The extreme words give exactly 2^-24 and 1 - 2^-24, never 0 or 1.
  EXPECT_EQ(rng::uniform_open01(0u), 5.9604644775390625e-8f);
  EXPECT_EQ(rng::uniform_open01(0xffffffffu), 1.0f - 5.9604644775390625e-8f);
  EXPECT_LT(rng::uniform_open01(0xffffffffu), 1.0f);
  EXPECT_EQ(rng::uniform_open01(0x1ffu), rng::uniform_open01(0u));
  EXPECT_GT(rng::uniform_open01(0x200u), rng::uniform_open01(0u));
  EXPECT_TRUE(std::isfinite(std::log(rng::uniform_open01(0u))));
}

TEST(KernelMathPhilox, KeyedNormalsHaveStandardNormalMoments) {
  // 4 * 50,000 normals: sample moments within about five standard errors.
  const int rows = 50000;
  double sum = 0, sum2 = 0, sum4 = 0, cross = 0;
  for (int i = 0; i < rows; ++i) {
    float z[4];
    rng::keyed_normals4(11, i, 0, rng::kStreamBaseNoise, z);
    for (float v : z) {
      sum += v;
      sum2 += double(v) * v;
      sum4 += double(v) * v * v * v;
    }
    cross += double(z[0]) * z[1] + double(z[2]) * z[3];
  }
  const double n = 4.0 * rows;
  EXPECT_NEAR(sum / n, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(sum2 / n, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));
  EXPECT_NEAR(cross / (n / 2), 0.0, 5.0 / std::sqrt(n / 2));
}

// --- Accept test -----------------------------------------------------------------------------

TEST(KernelMathAccept, ClippedMarginRemovesBalanceThenClips) {
  EXPECT_FLOAT_EQ(calib::clipped_margin(1.5f, 0.5f, 2.0f), 1.0f);
  EXPECT_FLOAT_EQ(calib::clipped_margin(5.0f, 0.5f, 2.0f), 2.0f);
  EXPECT_FLOAT_EQ(calib::clipped_margin(5.0f, 0.0f, std::numeric_limits<float>::infinity()), 5.0f);
  EXPECT_TRUE(std::isnan(calib::clipped_margin(std::nanf(""), 0.0f, 2.0f)));
}

TEST(KernelMathAccept, AcceptanceFrequencyIsExpOfMarginMinusCeiling) {
  // With a constant margin m < L every candidate is accepted with probability exp(m - L).
  const float ceiling = 2.0f;
  const float margin = 0.5f;
  const int n = 200000;
  int accepted = 0;
  for (int i = 0; i < n; ++i) accepted += calib::accept_candidate(3, i, margin, ceiling) ? 1 : 0;
  const double p = std::exp(double(margin) - ceiling);
  EXPECT_NEAR(double(accepted) / n, p, 5.0 * std::sqrt(p * (1 - p) / n));
}

TEST(KernelMathAccept, MarginAtTheCeilingAcceptsEveryCandidate) {
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(calib::accept_candidate(9, i, 2.0f, 2.0f));
}

TEST(KernelMathAccept, DecisionDependsOnlyOnSeedAndCandidateIndex) {
  // The same candidate index decides the same way whatever else was evaluated before.
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const float u = rng::keyed_uniform(21, i, rng::kStreamAccept);
    const float m = -1.0f;
    EXPECT_EQ(calib::accept_candidate(21, i, m, 2.0f), std::log(u) < m - 2.0f);
  }
}

// --- Log-mean-exp ----------------------------------------------------------------------------

TEST(KernelMathLogMeanExp, MatchesTheDirectFormulaOnModerateValues) {
  std::mt19937_64 gen(1);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v(1000);
  calib::LogSumExp acc;
  double sum = 0, sum2 = 0;
  for (double& x : v) {
    x = normal(gen);
    acc.add(x);
    sum += std::exp(x);
    sum2 += std::exp(2 * x);
  }
  const double n = v.size();
  const double mean = sum / n;
  const double var = (sum2 - n * mean * mean) / (n - 1);
  EXPECT_NEAR(acc.log_mean_exp(), std::log(mean), 1e-12);
  EXPECT_NEAR(acc.log_mean_exp_se(), std::sqrt(var / n) / mean, 1e-12);
  EXPECT_NEAR(acc.effective_sample_size(), sum * sum / sum2, 1e-9);
}

TEST(KernelMathLogMeanExp, MergingPartialsInAnyGroupingGivesTheSequentialResult) {
  // The GPU merges per-thread, then per-block partials; any split must agree.
  std::vector<double> v;
  for (int i = 0; i < 997; ++i) v.push_back(std::sin(i * 0.37) * 30.0);
  calib::LogSumExp sequential;
  for (double x : v) sequential.add(x);
  for (std::size_t parts : {2u, 7u, 64u, 997u}) {
    calib::LogSumExp total;
    for (std::size_t p = 0; p < parts; ++p) {
      calib::LogSumExp partial;
      for (std::size_t i = p; i < v.size(); i += parts) partial.add(v[i]);
      total.merge(partial);
    }
    EXPECT_NEAR(total.log_mean_exp(), sequential.log_mean_exp(), 1e-12) << parts;
    EXPECT_NEAR(total.log_mean_exp_se(), sequential.log_mean_exp_se(), 1e-12) << parts;
    EXPECT_EQ(total.count, sequential.count);
  }
}

TEST(KernelMathLogMeanExp, HugeValuesDoNotOverflow) {
  calib::LogSumExp acc;
  acc.add(1000.0);
  acc.add(1000.0);
  acc.add(1000.0 + std::log(4.0));
  EXPECT_NEAR(acc.log_mean_exp(), 1000.0 + std::log(2.0), 1e-12);
  calib::LogSumExp empty;
  acc.merge(empty);
  EXPECT_EQ(acc.count, 3u);
}

TEST(KernelMathLogMeanExp, MinusInfinityIsAZeroWeightInAnyOrderAndGrouping) {
  // A classifier may call a row impossible (margin -infinity): its weight is zero, it still
  // counts in the mean, and no order of folding turns it into NaN.
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> v{-inf, std::log(2.0), -inf, std::log(6.0), -inf, -inf};
  calib::LogSumExp acc;
  for (double x : v) acc.add(x);
  EXPECT_EQ(acc.count, 6u);
  EXPECT_NEAR(acc.log_mean_exp(), std::log(8.0 / 6.0), 1e-12);
  EXPECT_NEAR(acc.effective_sample_size(), 64.0 / 40.0, 1e-12);
  EXPECT_TRUE(std::isfinite(acc.log_mean_exp_se()));

  // Partials holding only zero weights, merged on either side.
  calib::LogSumExp zeros, values, left, right;
  zeros.add(-inf);
  zeros.add(-inf);
  values.add(std::log(2.0));
  values.add(std::log(6.0));
  left = zeros;
  left.merge(values);
  right = values;
  right.merge(zeros);
  for (const calib::LogSumExp& merged : {left, right}) {
    EXPECT_EQ(merged.count, 4u);
    EXPECT_NEAR(merged.log_mean_exp(), std::log(2.0), 1e-12);
  }

  // Nothing but zero weights: log of a zero mean, no NaN anywhere.
  zeros.merge(zeros);
  EXPECT_EQ(zeros.count, 4u);
  EXPECT_EQ(zeros.log_mean_exp(), -inf);
  EXPECT_EQ(zeros.effective_sample_size(), 0.0);
}

// --- The packed MAF row engine against the CPU MAF ------------------------------------------

/// The fused density kernel's work on the CPU: tiles of `tile` rows, strided state.
std::vector<float> engine_log_prob(const rows::PackedFlow& f, const Matrix<float>& x, int tile) {
  const rows::PackedMaf& maf = f.maf;
  std::vector<float> out(x.rows());
  std::vector<float> state(static_cast<std::size_t>(tile) * rows::state_floats(maf));
  for (std::size_t row0 = 0; row0 < x.rows(); row0 += tile) {
    const int here = static_cast<int>(std::min<std::size_t>(tile, x.rows() - row0));
    std::vector<double> log_det(tile, 0.0);
    for (int t = 0; t < here; ++t) {
      const rows::RowState s = rows::strided_state(maf, state.data() + t, tile);
      for (int c = 0; c < maf.dim; ++c) s.x[c * tile] = x(row0 + t, c);
      rows::standardize_row(maf, f.floats.data(), s);
    }
    for (int m = 0; m < maf.layers; ++m) {
      const rows::LayerView view{f.floats.data() + f.made[m].block, f.ints.data(), &f.made[m]};
      for (int t = 0; t < here; ++t) {
        const rows::RowState s = rows::strided_state(maf, state.data() + t, tile);
        log_det[t] += rows::made_density_row(maf, view, s);
        rows::batch_norm_row(maf, f.made[m], f.floats.data(), s);
      }
    }
    for (int t = 0; t < here; ++t) {
      const rows::RowState s = rows::strided_state(maf, state.data() + t, tile);
      out[row0 + t] = static_cast<float>(rows::base_log_density_row(maf, s, log_det[t]));
    }
  }
  return out;
}

/// The sampling kernel's work on the CPU, one row at a time with stride `stride`.
Matrix<float> engine_sample(const rows::PackedFlow& f, std::size_t n, std::uint64_t seed,
                            std::uint64_t first_row, bool naive, int stride) {
  const rows::PackedMaf& maf = f.maf;
  Matrix<float> out(n, maf.dim);
  std::vector<float> state(static_cast<std::size_t>(stride) * rows::state_floats(maf));
  for (std::size_t i = 0; i < n; ++i) {
    const rows::RowState s = rows::strided_state(maf, state.data() + i % stride, stride);
    rows::base_noise_row(maf, seed, first_row + i, s);
    for (int m = maf.layers - 1; m >= 0; --m) {
      rows::batch_norm_inverse_row(maf, f.made[m], f.floats.data(), s);
      const rows::LayerView view{f.floats.data() + f.made[m].block, f.ints.data(), &f.made[m]};
      if (naive) {
        rows::made_inverse_row_naive(maf, view, s);
      } else {
        rows::made_inverse_row(maf, view, s);
      }
    }
    rows::unstandardize_row(maf, f.floats.data(), s);
    for (int c = 0; c < maf.dim; ++c) out(i, c) = s.x[c * stride];
  }
  return out;
}

Matrix<float> random_rows(std::size_t n, int dim, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix<float> x(n, dim);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = normal(gen);
  return x;
}

struct EngineCase {
  int dim;
  int hidden;
  int hidden_layers;
  Activation activation;
  bool batch_norm;
};

// GoogleTest prints a case with this instead of its raw bytes.
void PrintTo(const EngineCase& c, std::ostream* os) {
  *os << "D" << c.dim << "_H" << c.hidden << "x" << c.hidden_layers << "_"
      << to_string(c.activation) << (c.batch_norm ? "_bn" : "");
}

class KernelMathMafRows : public ::testing::TestWithParam<EngineCase> {};

TEST_P(KernelMathMafRows, DensityMatchesTheCpuMafInTheGpuTileLayout) {
  const EngineCase c = GetParam();
  const Maf flow =
      random_dense_flow(c.dim, c.hidden, c.hidden_layers, c.batch_norm, 5, 3, c.activation);
  const rows::PackedFlow packed = rows::pack_flow(flow);
  const Matrix<float> x = random_rows(77, c.dim, 3);

  const std::vector<float> reference = flow.log_prob(x);
  for (int tile : {1, 32}) {
    const std::vector<float> engine = engine_log_prob(packed, x, tile);
    for (std::size_t i = 0; i < x.rows(); ++i) {
      EXPECT_NEAR(engine[i], reference[i], 1e-4 * (1.0 + std::fabs(reference[i])))
          << "row " << i << " tile " << tile;
    }
  }
}

TEST_P(KernelMathMafRows, DegreeOrderedSamplingMatchesTheCpuMafFromTheSameNoise) {
  const EngineCase c = GetParam();
  const Maf flow =
      random_dense_flow(c.dim, c.hidden, c.hidden_layers, c.batch_norm, 8, 3, c.activation);
  const rows::PackedFlow packed = rows::pack_flow(flow);

  const Matrix<float> reference = flow.sample(40, 99, 1000);
  const Matrix<float> engine = engine_sample(packed, 40, 99, 1000, false, 16);
  for (std::size_t i = 0; i < reference.size(); ++i) {
    EXPECT_NEAR(engine.data()[i], reference.data()[i],
                2e-4 * (1.0 + std::fabs(reference.data()[i])))
        << "value " << i;
  }
}

TEST_P(KernelMathMafRows, NaiveAndDegreeOrderedSamplingAgree) {
  const EngineCase c = GetParam();
  const Maf flow =
      random_dense_flow(c.dim, c.hidden, c.hidden_layers, c.batch_norm, 4, 3, c.activation);
  const rows::PackedFlow packed = rows::pack_flow(flow);
  const Matrix<float> ordered = engine_sample(packed, 25, 7, 0, false, 1);
  const Matrix<float> naive = engine_sample(packed, 25, 7, 0, true, 3);
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    EXPECT_NEAR(ordered.data()[i], naive.data()[i], 1e-5 * (1.0 + std::fabs(naive.data()[i])));
  }
}

TEST_P(KernelMathMafRows, DensityPassMapsSamplesBackToTheirNoise) {
  // The two directions are inverses: the noise a sample came from is recovered exactly.
  const EngineCase c = GetParam();
  const Maf flow =
      random_dense_flow(c.dim, c.hidden, c.hidden_layers, c.batch_norm, 2, 3, c.activation);
  const rows::PackedFlow packed = rows::pack_flow(flow);
  const rows::PackedMaf& maf = packed.maf;
  const Matrix<float> x = engine_sample(packed, 10, 5, 0, false, 1);
  const Matrix<float> noise = Maf::base_noise(10, c.dim, 5, 0);
  std::vector<float> state(rows::state_floats(maf));
  for (std::size_t i = 0; i < x.rows(); ++i) {
    const rows::RowState s = rows::strided_state(maf, state.data(), 1);
    for (int d = 0; d < maf.dim; ++d) s.x[d] = x(i, d);
    rows::standardize_row(maf, packed.floats.data(), s);
    for (int m = 0; m < maf.layers; ++m) {
      const rows::LayerView view{packed.floats.data() + packed.made[m].block, packed.ints.data(),
                                 &packed.made[m]};
      rows::made_density_row(maf, view, s);
      rows::batch_norm_row(maf, packed.made[m], packed.floats.data(), s);
    }
    for (int d = 0; d < maf.dim; ++d) {
      EXPECT_NEAR(s.x[d], noise(i, d), 1e-3 * (1.0 + std::fabs(noise(i, d)))) << i << "," << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KernelMathShapes, KernelMathMafRows,
                         ::testing::Values(EngineCase{1, 8, 1, Activation::kRelu, false},
                                           EngineCase{3, 5, 2, Activation::kTanh, true},
                                           EngineCase{8, 32, 2, Activation::kRelu, true},
                                           EngineCase{7, 4, 3, Activation::kElu, false},
                                           EngineCase{13, 40, 1, Activation::kElu, true}));

TEST(KernelMathMafPack, MaskedOutWeightsAreZeroInThePackedCopy) {
  // Changing a weight the mask hides changes neither the packed buffer nor the density.
  Maf flow = random_dense_flow(6, 12, 2, false, 3);
  const MadeLayout& layout = flow.made_layers()[0];
  const TensorSpec& w0 = flow.tensors()[layout.weights[0]];
  int row = -1;
  for (int r = 0; r < w0.rows && row < 0; ++r) {
    if (layout.prefix[0][r] < w0.cols) row = r;
  }
  ASSERT_GE(row, 0) << "every unit of the first layer sees every input";
  const rows::PackedFlow before = rows::pack_flow(flow);
  flow.parameters()[w0.offset + static_cast<std::size_t>(row) * w0.cols + w0.cols - 1] += 100.0f;
  const rows::PackedFlow after = rows::pack_flow(flow);
  EXPECT_EQ(before.floats, after.floats);
}

TEST(KernelMathMafPack, GroupPrefixIsTheLongestPrefixOfEachGroupOfFour) {
  const Maf flow = random_dense_flow(9, 10, 2, false, 1);
  const rows::PackedFlow packed = rows::pack_flow(flow);
  for (const rows::PackedMade& made : packed.made) {
    for (int l = 0; l <= packed.maf.hidden_layers; ++l) {
      const rows::PackedMatrix& m = made.matrix[l];
      EXPECT_EQ(m.units_pad % 4, 0);
      EXPECT_EQ(m.weight % 4, 0);
      for (int g = 0; g < m.units_pad / 4; ++g) {
        int longest = 0;
        for (int j = 0; j < 4; ++j) longest = std::max(longest, packed.ints[m.prefix + 4 * g + j]);
        EXPECT_EQ(packed.ints[m.group_prefix + g], longest);
      }
    }
  }
}

TEST(KernelMathMafPack, RejectsMoreHiddenLayersThanTheKernelsSupport) {
  MafConfig config;
  config.dim = 2;
  config.hidden = 4;
  config.hidden_layers = rows::kMaxHiddenLayers + 1;
  const Maf flow(config);
  EXPECT_THROW(rows::pack_flow(flow), InvalidArgument);
}

// --- Kernel memory plans -----------------------------------------------------------------------

constexpr std::size_t kHopperSharedPerBlock = 232448;  // 227 KB opt-in (H100, H200)
constexpr std::size_t kAmpereSharedPerBlock = 166912;  // 163 KB opt-in (A100)

rows::PackedFlow packed_shape(int dim, int hidden) {
  MafConfig config;
  config.dim = dim;
  config.hidden = hidden;
  config.layers = 5;
  config.hidden_layers = 2;
  return rows::pack_flow(Maf(config));
}

TEST(KernelMathPlan, TargetModelIsFusedWithTile128OnHopperAnd64OnAmpere) {
  // D = 8, hidden 128: a layer block of (8*128+128) + (128*128+128) + (128*16+16) floats and
  // 2*8 + 2*128 + 16 floats of state per row.
  const rows::PackedFlow f = packed_shape(8, 128);
  EXPECT_EQ(f.maf.max_block_floats, 19728);
  EXPECT_EQ(rows::state_floats(f.maf), 288);
  const rows::KernelPlan hopper = rows::plan_fused_density(f.maf, kHopperSharedPerBlock);
  EXPECT_EQ(hopper.tile, 128);
  EXPECT_EQ(hopper.shared_bytes, (19728u + 128u * 288u) * 4u);
  EXPECT_EQ(rows::plan_fused_density(f.maf, kAmpereSharedPerBlock).tile, 64);
  const rows::KernelPlan sampling = rows::plan_sampling(f.maf, kHopperSharedPerBlock);
  EXPECT_TRUE(sampling.weights_shared && sampling.state_shared);
}

TEST(KernelMathPlan, ModelsBeyondSharedMemoryUseTheGeneralPathAndGlobalScratch) {
  const rows::PackedFlow wide = packed_shape(8, 256);  // a 256 x 256 matrix alone is 256 KiB
  EXPECT_EQ(rows::plan_fused_density(wide.maf, kHopperSharedPerBlock).tile, 0);
  const rows::KernelPlan sampling = rows::plan_sampling(wide.maf, kHopperSharedPerBlock);
  EXPECT_FALSE(sampling.weights_shared);
  EXPECT_FALSE(sampling.state_shared);
  EXPECT_EQ(sampling.shared_bytes, 0u);
  EXPECT_GT(sampling.tile, 0);
}

TEST(KernelMathPlan, SamplingKeepsWeightsSharedWhenOnlyTheStateIsTooBig) {
  // D = 64, hidden 64 fits whole at tile 64; with a limit just above the weights alone, only
  // the weights stay in shared memory.
  const rows::PackedFlow f = packed_shape(64, 64);
  EXPECT_EQ(rows::plan_fused_density(f.maf, kHopperSharedPerBlock).tile, 64);
  const std::size_t weights = static_cast<std::size_t>(f.maf.max_block_floats) * 4;
  const rows::KernelPlan tight = rows::plan_sampling(f.maf, weights + 100);
  EXPECT_TRUE(tight.weights_shared);
  EXPECT_FALSE(tight.state_shared);
  EXPECT_EQ(tight.shared_bytes, weights);
}

}  // namespace
}  // namespace nfcal
