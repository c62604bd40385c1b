// GPU accept/reject, log Z and the calibrated sampling loop against CPU references built from
// the shared math (common/accept.hpp) and the CPU MAF. The classifier here is an analytic
// margin computed by a small kernel, so the loop is tested without XGBoost.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/cuda.hpp"

#include "common/accept.hpp"
#include "cuda_check.cuh"
#include "gpu/gpu_test_util.hpp"

namespace nfcal {
namespace {

using gpu_test::random_dense_flow;
using gpu_test::report_parity;

/// margin(x) = 1 - |x|^2 / (2 dim): high near the origin, so the ceiling clips there.
__host__ __device__ float bowl_margin(const float* x, int dim) {
  float squared = 0.0f;
  for (int c = 0; c < dim; ++c) squared = fmaf(x[c], x[c], squared);
  return 1.0f - squared / (2.0f * dim);
}

__global__ void bowl_kernel(const float* x, std::size_t n, int dim, float offset, float* out) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = bowl_margin(x + i * dim, dim) + offset;
}

class BowlClassifier : public DeviceClassifier {
 public:
  explicit BowlClassifier(int dim, float offset = 0.0f) : dim_(dim), offset_(offset) {}
  int num_features() const override { return dim_; }
  void margins(const float* d_x, std::size_t n, float* d_out, CudaStream stream) const override {
    if (n == 0) return;
    bowl_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(d_x, n, dim_, offset_,
                                                                            d_out);
    NFCAL_LAUNCH_CHECK();
  }

 private:
  int dim_;
  float offset_;
};

/// The CPU sampler's rule applied to given candidates (row i is candidate i): the first n, in
/// index order, that pass the test.
Matrix<float> cpu_calibrated(const Matrix<float>& candidates, std::size_t n, std::uint64_t seed,
                             float ceiling) {
  const int dim = static_cast<int>(candidates.cols());
  Matrix<float> out(n, dim);
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < candidates.rows() && accepted < n; ++i) {
    const float m = bowl_margin(candidates.row(i), dim);
    const float clipped = calib::clipped_margin(m, 0.0f, ceiling);
    if (!calib::accept_candidate(seed, i, clipped, ceiling)) continue;
    std::copy(candidates.row(i), candidates.row(i) + dim, out.row(accepted++));
  }
  EXPECT_EQ(accepted, n) << "the CPU reference pool was too small";
  return out;
}

TEST(CudaAccept, AcceptedSetMatchesTheCpuDecisionsForTheSameMargins) {
  NFCAL_SKIP_WITHOUT_GPU();
  // Rows carry their own candidate index, so the output names what was accepted.
  const std::size_t n = 100000;
  const int dim = 2;
  const std::uint64_t first = 5000, seed = 31;
  std::vector<float> rows(n * dim), margins(n);
  for (std::size_t i = 0; i < n; ++i) {
    rows[i * dim] = static_cast<float>(i);
    rows[i * dim + 1] = -1.0f;
    margins[i] = static_cast<float>(std::sin(0.001 * i) * 3.0);
  }
  std::vector<float> expected;
  for (std::size_t i = 0; i < n; ++i) {
    const float clipped = calib::clipped_margin(margins[i], 0.0f, 1.5f);
    if (calib::accept_candidate(seed, first + i, clipped, 1.5f)) expected.push_back(float(i));
  }

  cuda_detail::DeviceBuffer<float> d_rows(n * dim), d_margins(n), d_out(n * dim);
  NFCAL_CUDA_CHECK(cudaMemcpy(d_rows.data(), rows.data(), n * dim * 4, cudaMemcpyHostToDevice));
  NFCAL_CUDA_CHECK(cudaMemcpy(d_margins.data(), margins.data(), n * 4, cudaMemcpyHostToDevice));
  const std::size_t count = cuda_accept_rows(d_rows.data(), d_margins.data(), n, dim, first, seed,
                                             1.5f, d_out.data(), 3, n);
  ASSERT_EQ(count, expected.size());
  std::vector<float> out((count + 3) * dim);
  NFCAL_CUDA_CHECK(cudaMemcpy(out.data(), d_out.data(), out.size() * 4, cudaMemcpyDeviceToHost));
  std::size_t mismatches = 0;
  for (std::size_t j = 0; j < count; ++j) mismatches += out[(3 + j) * dim] != expected[j];
  report_parity("accept_mismatches", double(mismatches));
  EXPECT_EQ(mismatches, 0u);
}

TEST(CudaAccept, RowsPastTheCapacityAreCountedButNotWritten) {
  NFCAL_SKIP_WITHOUT_GPU();
  const std::size_t n = 1000;
  std::vector<float> margins(n, 2.0f);  // at the ceiling: every candidate is accepted
  cuda_detail::DeviceBuffer<float> d_rows(n), d_margins(n), d_out(11);
  NFCAL_CUDA_CHECK(cudaMemset(d_rows.data(), 0, n * 4));
  NFCAL_CUDA_CHECK(cudaMemcpy(d_margins.data(), margins.data(), n * 4, cudaMemcpyHostToDevice));
  EXPECT_EQ(
      cuda_accept_rows(d_rows.data(), d_margins.data(), n, 1, 0, 1, 2.0f, d_out.data(), 1, 11), n);
}

TEST(CudaLogZ, LogMeanExpMatchesTheCpuReduction) {
  NFCAL_SKIP_WITHOUT_GPU();
  const std::size_t n = 3000001;
  // Minus infinity is a zero weight: whole blocks of them at the start, and scattered ones.
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i) {
    const bool impossible = i < 70000 || i % 7 == 0;
    values[i] = impossible ? -std::numeric_limits<float>::infinity()
                           : static_cast<float>(std::cos(i * 0.7) * 4.0);
  }
  cuda_detail::DeviceBuffer<float> d_values(n);
  NFCAL_CUDA_CHECK(cudaMemcpy(d_values.data(), values.data(), n * 4, cudaMemcpyHostToDevice));

  for (const float ceiling : {std::numeric_limits<float>::infinity(), 1.0f}) {
    calib::LogSumExp cpu;
    for (float v : values) cpu.add(std::min(v, ceiling));
    const LogZEstimate gpu = cuda_log_mean_exp(d_values.data(), n, ceiling);
    report_parity("log_mean_exp", std::fabs(gpu.log_z - cpu.log_mean_exp()));
    EXPECT_NEAR(gpu.log_z, cpu.log_mean_exp(), 1e-9);
    EXPECT_NEAR(gpu.se, cpu.log_mean_exp_se(), 1e-9);
    EXPECT_NEAR(gpu.ess, cpu.effective_sample_size(), 1e-6 * cpu.effective_sample_size());
    EXPECT_EQ(gpu.samples, n);
    EXPECT_EQ(gpu.max_margin, double(*std::max_element(values.begin(), values.end())));
  }
}

TEST(CudaCalibratedSampling, AcceptedRowsMatchTheCpuRuleForAFixedSeed) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(4, 32, 2, false, 21);
  const CudaMaf gpu(flow);
  const BowlClassifier bowl(4);
  CudaSamplerConfig config;
  config.ceiling = 0.5f;
  config.seed = 8;
  CudaCalibratedSampler sampler(gpu, bowl, config);

  const Matrix<float> out = sampler.sample(5000);

  // The rule on the GPU's own candidates is exact: the bowl's margin is the same float on both
  // sides (fmaf and division are correctly rounded), and so is the accept test.
  const Matrix<float> gpu_candidates = gpu.sample(60000, 8, 0);
  EXPECT_EQ(out.values(), cpu_calibrated(gpu_candidates, 5000, 8, 0.5f).values());
  // Against the CPU flow's candidates, rows agree to rounding, unless a decision near the
  // threshold flips and shifts the rest (rare: a margin within rounding of log u).
  const Matrix<float> cpu = cpu_calibrated(flow.sample(60000, 8, 0), 5000, 8, 0.5f);
  const double error = gpu_test::max_relative_error(out.data(), cpu.data(), cpu.size());
  report_parity("calibrated_rows", error);
  EXPECT_LT(error, 5e-4);
  EXPECT_GE(sampler.last_stats().accepted, 5000u);
}

TEST(CudaCalibratedSampling, RoundSizesDoNotChangeTheOutput) {
  NFCAL_SKIP_WITHOUT_GPU();
  const CudaMaf gpu(random_dense_flow(3, 16, 1, false, 22));
  const BowlClassifier bowl(3);
  CudaSamplerConfig small;
  small.seed = 5;
  small.max_round = 4096;
  CudaSamplerConfig large = small;
  large.max_round = std::size_t(1) << 22;
  CudaCalibratedSampler a(gpu, bowl, small), b(gpu, bowl, large);
  const Matrix<float> ra = a.sample(20000);
  const Matrix<float> rb = b.sample(20000);
  EXPECT_GT(a.last_stats().rounds, b.last_stats().rounds);
  EXPECT_EQ(ra.values(), rb.values());
}

TEST(CudaCalibratedSampling, HopelessAcceptanceStopsAtTheCandidateCap) {
  NFCAL_SKIP_WITHOUT_GPU();
  const CudaMaf gpu(random_dense_flow(2, 8, 1, false, 23));
  const BowlClassifier never(2, -std::numeric_limits<float>::infinity());
  CudaSamplerConfig config;
  config.max_candidates = 100000;
  CudaCalibratedSampler sampler(gpu, never, config);
  EXPECT_THROW(sampler.sample(10), SamplingError);
}

TEST(CudaCalibratedSampling, LogZMatchesTheCpuEstimateOnTheSameFlowSamples) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(4, 32, 2, true, 24);
  const CudaMaf gpu(flow);
  const BowlClassifier bowl(4);
  CudaSamplerConfig config;
  config.ceiling = 0.75f;
  CudaCalibratedSampler sampler(gpu, bowl, config);

  const LogZEstimate estimate = sampler.log_z(200000, 99);
  const Matrix<float> x = flow.sample(200000, 99, 0);
  calib::LogSumExp cpu;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    cpu.add(calib::clipped_margin(bowl_margin(x.row(i), 4), 0.0f, 0.75f));
  }
  report_parity("log_z", std::fabs(estimate.log_z - cpu.log_mean_exp()));
  EXPECT_NEAR(estimate.log_z, cpu.log_mean_exp(), 1e-5);
  EXPECT_NEAR(estimate.se, cpu.log_mean_exp_se(), 1e-6);
}

}  // namespace
}  // namespace nfcal
