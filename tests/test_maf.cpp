// Contract tests of the CPU MAF in double precision: inversion, Jacobians against finite
// differences, autoregressive structure, degree-ordered sampling against the D-pass
// reference, gradients against finite differences, and invariance to batching and threads.

#include <algorithm>
#include <cmath>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"

#include "maf_test_support.hpp"

namespace nfcal {
namespace {

using testing::normal_rows;
using testing::randomize;

struct FlowCase {
  int dim;
  int layers;
  int hidden;
  int hidden_layers;
  Activation activation;
  Ordering ordering;
  bool batch_norm;
};

std::string describe(const FlowCase& c) {
  return "D" + std::to_string(c.dim) + "_K" + std::to_string(c.layers) + "_H" +
         std::to_string(c.hidden) + "x" + std::to_string(c.hidden_layers) + "_" +
         to_string(c.activation) + "_" + to_string(c.ordering) + (c.batch_norm ? "_bn" : "");
}

std::string case_name(const ::testing::TestParamInfo<FlowCase>& info) {
  return describe(info.param);
}

// GoogleTest prints a case with this instead of its raw bytes.
void PrintTo(const FlowCase& c, std::ostream* os) { *os << describe(c); }

MafConfig config_of(const FlowCase& c) {
  MafConfig config;
  config.dim = c.dim;
  config.layers = c.layers;
  config.hidden = c.hidden;
  config.hidden_layers = c.hidden_layers;
  config.activation = c.activation;
  config.ordering = c.ordering;
  config.batch_norm = c.batch_norm;
  config.seed = 7;
  return config;
}

// A random flow of the case's architecture, with a standardization in front.
BasicMaf<double> random_flow(const FlowCase& c, std::uint64_t seed = 11) {
  BasicMaf<double> flow(config_of(c));
  randomize(flow, seed);
  Standardization standardization;
  for (int d = 0; d < c.dim; ++d) {
    standardization.shift.push_back(0.1 * d - 0.2);
    standardization.scale.push_back(0.5 + 0.25 * d);
  }
  flow.set_standardization(standardization);
  return flow;
}

// Central-difference Jacobian du/dx of the flow's forward map at one row.
std::vector<double> jacobian(const BasicMaf<double>& flow, const double* x, double step = 1e-6) {
  const int dim = flow.dim();
  std::vector<double> jac(dim * dim);
  std::vector<double> plus(x, x + dim), minus(x, x + dim), u_plus(dim), u_minus(dim);
  double log_det = 0;
  for (int j = 0; j < dim; ++j) {
    plus[j] = x[j] + step;
    minus[j] = x[j] - step;
    flow.forward(plus.data(), 1, u_plus.data(), &log_det);
    flow.forward(minus.data(), 1, u_minus.data(), &log_det);
    for (int i = 0; i < dim; ++i) jac[i * dim + j] = (u_plus[i] - u_minus[i]) / (2 * step);
    plus[j] = minus[j] = x[j];
  }
  return jac;
}

// log|det| of a square matrix by Gaussian elimination with partial pivoting.
double log_abs_det(std::vector<double> a, int n) {
  double result = 0;
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int r = col + 1; r < n; ++r) {
      if (std::fabs(a[r * n + col]) > std::fabs(a[pivot * n + col])) pivot = r;
    }
    for (int c = 0; c < n; ++c) std::swap(a[col * n + c], a[pivot * n + c]);
    result += std::log(std::fabs(a[col * n + col]));
    for (int r = col + 1; r < n; ++r) {
      const double factor = a[r * n + col] / a[col * n + col];
      for (int c = col; c < n; ++c) a[r * n + c] -= factor * a[col * n + c];
    }
  }
  return result;
}

class MafContract : public ::testing::TestWithParam<FlowCase> {};

TEST_P(MafContract, SamplingInvertsTheDensityPass) {
  const BasicMaf<double> flow = random_flow(GetParam());
  const int dim = flow.dim();
  const Matrix<double> x = normal_rows<double>(300, dim, 3);

  std::vector<double> u(x.size()), log_det(x.rows()), back(x.size());
  flow.forward(x.data(), x.rows(), u.data(), log_det.data());
  flow.inverse(u.data(), x.rows(), back.data());

  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(back[i], x.data()[i], 1e-6 * std::max(1.0, std::fabs(x.data()[i])));
  }

  // log_prob leaves the same base coordinates when asked for them, and the same densities.
  std::vector<double> density(x.rows()), density_with_u(x.rows()), u_of_density(x.size());
  flow.log_prob(x.data(), x.rows(), density.data());
  flow.log_prob(x.data(), x.rows(), density_with_u.data(), u_of_density.data());
  EXPECT_EQ(u_of_density, u);
  EXPECT_EQ(density_with_u, density);
}

TEST_P(MafContract, LogDetEqualsFiniteDifferenceJacobian) {
  const BasicMaf<double> flow = random_flow(GetParam());
  const int dim = flow.dim();
  const Matrix<double> x = normal_rows<double>(5, dim, 4);

  for (std::size_t r = 0; r < x.rows(); ++r) {
    std::vector<double> u(dim);
    double log_det = 0;
    flow.forward(x.row(r), 1, u.data(), &log_det);
    const double reference = log_abs_det(jacobian(flow, x.row(r)), dim);
    EXPECT_NEAR(log_det, reference, 1e-5 * std::max(1.0, std::fabs(reference))) << "row " << r;
  }
}

// The first k layers of a flow as a flow of their own: the same architecture up to layer k
// (and the batch norms between them), the same tensors by name, the same batch-norm running
// statistics and standardization.
BasicMaf<double> first_layers(const BasicMaf<double>& flow, int k) {
  MafConfig config = flow.config();
  config.layers = k;
  BasicMaf<double> prefix(config);
  std::map<std::string, const TensorSpec*> source;
  for (const TensorSpec& spec : flow.tensors()) source[spec.name] = &spec;
  for (const TensorSpec& spec : prefix.tensors()) {
    const TensorSpec& from = *source.at(spec.name);
    std::copy_n(flow.parameters().begin() + static_cast<std::ptrdiff_t>(from.offset), from.size(),
                prefix.parameters().begin() + static_cast<std::ptrdiff_t>(spec.offset));
  }
  std::copy_n(flow.buffers().begin(), prefix.buffers().size(), prefix.buffers().begin());
  prefix.set_standardization(flow.standardization());
  return prefix;
}

TEST_P(MafContract, EveryLayersLogDetEqualsItsFiniteDifferenceJacobian) {
  // Layer k's log|det| is the prefix of k layers' minus the prefix of k - 1 layers'; by the
  // chain rule the same difference of finite-difference log-determinants is layer k's own.
  const BasicMaf<double> flow = random_flow(GetParam());
  const int dim = flow.dim();
  const Matrix<double> x = normal_rows<double>(4, dim, 14);
  std::vector<double> u(dim);
  std::vector<double> previous_log_det(x.rows(), 0.0), previous_reference(x.rows(), 0.0);

  for (int k = 1; k <= flow.config().layers; ++k) {
    const BasicMaf<double> prefix = first_layers(flow, k);
    for (int l = 0; l < k; ++l) {
      ASSERT_EQ(prefix.made_layers()[l].order, flow.made_layers()[l].order) << "layer " << l;
    }
    for (std::size_t r = 0; r < x.rows(); ++r) {
      double log_det = 0;
      prefix.forward(x.row(r), 1, u.data(), &log_det);
      const double reference = log_abs_det(jacobian(prefix, x.row(r)), dim);
      const double layer = log_det - previous_log_det[r];
      const double layer_reference = reference - previous_reference[r];
      EXPECT_NEAR(layer, layer_reference, 1e-5 * std::max(1.0, std::fabs(reference)))
          << "layer " << k << " row " << r;
      previous_log_det[r] = log_det;
      previous_reference[r] = reference;
    }
  }
}

TEST_P(MafContract, LogProbIsBaseDensityPlusLogDet) {
  const BasicMaf<double> flow = random_flow(GetParam());
  const int dim = flow.dim();
  const Matrix<double> x = normal_rows<double>(50, dim, 5);
  std::vector<double> u(x.size()), log_det(x.rows());
  flow.forward(x.data(), x.rows(), u.data(), log_det.data());
  const std::vector<double> log_p = flow.log_prob(x);

  for (std::size_t r = 0; r < x.rows(); ++r) {
    double squared = 0;
    for (int d = 0; d < dim; ++d) squared += u[r * dim + d] * u[r * dim + d];
    const double expected = -0.5 * squared - 0.5 * dim * std::log(2 * M_PI) + log_det[r];
    EXPECT_NEAR(log_p[r], expected, 1e-10 * std::max(1.0, std::fabs(expected)));
  }
}

TEST_P(MafContract, DegreeOrderedSamplingMatchesNaiveDPassReference) {
  const BasicMaf<double> flow = random_flow(GetParam());
  const Matrix<double> u = normal_rows<double>(130, flow.dim(), 6);
  std::vector<double> fast(u.size()), naive(u.size());
  flow.inverse(u.data(), u.rows(), fast.data());
  flow.inverse_naive(u.data(), u.rows(), naive.data());
  for (std::size_t i = 0; i < u.size(); ++i) {
    EXPECT_NEAR(fast[i], naive[i], 1e-10 * std::max(1.0, std::fabs(naive[i])));
  }
}

TEST_P(MafContract, AnalyticGradientsMatchFiniteDifferencesForEveryTensor) {
  const FlowCase& c = GetParam();
  BasicMaf<double> flow = random_flow(c, 13);
  const Matrix<double> x = normal_rows<double>(17, c.dim, 8);
  std::vector<double> grad(flow.num_parameters());
  flow.loss_and_gradient(x.data(), x.rows(), grad.data());
  std::vector<double> scratch(flow.num_parameters());

  // A few entries of every tensor, chosen among the unmasked ones.
  const std::vector<bool> live = testing::unmasked_parameters(flow);
  std::mt19937_64 engine(21);
  for (const TensorSpec& tensor : flow.tensors()) {
    int checked = 0;
    for (int attempt = 0; attempt < 40 && checked < 4; ++attempt) {
      const std::size_t index = tensor.offset + engine() % tensor.size();
      if (!live[index]) continue;
      const double saved = flow.parameters()[index];
      const double step = 1e-5;
      flow.parameters()[index] = saved + step;
      const double plus = flow.loss_and_gradient(x.data(), x.rows(), scratch.data());
      flow.parameters()[index] = saved - step;
      const double minus = flow.loss_and_gradient(x.data(), x.rows(), scratch.data());
      flow.parameters()[index] = saved;
      const double numeric = (plus - minus) / (2 * step);
      if (grad[index] == 0.0 && std::fabs(numeric) < 1e-9) continue;  // a dead unit
      EXPECT_NEAR(grad[index], numeric, 1e-6 + 1e-5 * std::fabs(numeric))
          << tensor.name << " entry " << index - tensor.offset;
      ++checked;
    }
    // With D = 1 no output can see a hidden unit, so only the output biases are live.
    if (c.dim > 1) {
      EXPECT_GT(checked, 0) << "no live entry found in " << tensor.name;
    }
  }
}

TEST_P(MafContract, MaskedWeightsReceiveNoGradient) {
  const FlowCase& c = GetParam();
  const BasicMaf<double> flow = random_flow(c);
  const Matrix<double> x = normal_rows<double>(9, c.dim, 10);
  std::vector<double> grad(flow.num_parameters());
  flow.loss_and_gradient(x.data(), x.rows(), grad.data());
  const std::vector<bool> live = testing::unmasked_parameters(flow);
  std::size_t masked = 0;
  for (std::size_t i = 0; i < grad.size(); ++i) {
    if (live[i]) continue;
    ASSERT_EQ(grad[i], 0.0) << "parameter " << i;
    ASSERT_EQ(flow.parameters()[i], 0.0) << "parameter " << i;
    ++masked;
  }
  EXPECT_GT(masked, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, MafContract,
    ::testing::Values(FlowCase{1, 2, 8, 1, Activation::kRelu, Ordering::kReversed, false},
                      FlowCase{4, 3, 16, 2, Activation::kRelu, Ordering::kRandom, true},
                      FlowCase{2, 3, 16, 2, Activation::kTanh, Ordering::kReversed, false},
                      FlowCase{5, 4, 12, 2, Activation::kElu, Ordering::kRandom, true},
                      FlowCase{7, 2, 4, 1, Activation::kTanh, Ordering::kReversed, true},
                      FlowCase{9, 3, 30, 3, Activation::kTanh, Ordering::kRandom, false}),
    case_name);

TEST(MafGradient, LargeBatchSplitAcrossThreadsMatchesFiniteDifferences) {
  MafConfig config;
  config.dim = 4;
  config.hidden = 20;
  config.activation = Activation::kTanh;
  BasicMaf<double> flow(config);
  randomize(flow, 31);
  const Matrix<double> x = normal_rows<double>(300, 4, 12);  // more than one 128-row chunk
  std::vector<double> grad(flow.num_parameters()), scratch(flow.num_parameters());
  flow.loss_and_gradient(x.data(), x.rows(), grad.data());

  const std::vector<bool> live = testing::unmasked_parameters(flow);
  std::mt19937_64 engine(3);
  int checked = 0;
  while (checked < 25) {
    const std::size_t index = engine() % flow.num_parameters();
    if (!live[index]) continue;
    const double saved = flow.parameters()[index];
    flow.parameters()[index] = saved + 1e-5;
    const double plus = flow.loss_and_gradient(x.data(), x.rows(), scratch.data());
    flow.parameters()[index] = saved - 1e-5;
    const double minus = flow.loss_and_gradient(x.data(), x.rows(), scratch.data());
    flow.parameters()[index] = saved;
    const double numeric = (plus - minus) / 2e-5;
    EXPECT_NEAR(grad[index], numeric, 1e-7 + 1e-5 * std::fabs(numeric)) << "parameter " << index;
    ++checked;
  }
}

// --- Structure of a single MADE layer --------------------------------------------------------

TEST(MadeLayer, JacobianIsTriangularInTheLayersOrder) {
  for (Ordering ordering : {Ordering::kReversed, Ordering::kRandom}) {
    MafConfig config;
    config.dim = 6;
    config.layers = 1;
    config.hidden = 10;
    config.activation = Activation::kTanh;
    config.ordering = ordering;
    config.seed = 3;
    BasicMaf<double> flow(config);
    randomize(flow, 5);
    const std::vector<int>& order = flow.made_layers()[0].order;
    const Matrix<double> x = normal_rows<double>(3, config.dim, 2);

    for (std::size_t r = 0; r < x.rows(); ++r) {
      const std::vector<double> jac = jacobian(flow, x.row(r));
      for (int k = 0; k < config.dim; ++k) {
        for (int j = k + 1; j < config.dim; ++j) {
          // Output at position k may not depend on the input at a later position j.
          EXPECT_EQ(jac[order[k] * config.dim + order[j]], 0.0);
        }
      }
    }
  }
}

TEST(MadeLayer, ChangingAnInputNeverChangesEarlierOutputs) {
  MafConfig config;
  config.dim = 8;
  config.layers = 1;
  config.hidden = 20;
  config.ordering = Ordering::kRandom;
  BasicMaf<double> flow(config);
  randomize(flow, 9);
  const std::vector<int>& order = flow.made_layers()[0].order;
  const Matrix<double> x = normal_rows<double>(1, config.dim, 4);

  std::vector<double> u(config.dim), u_changed(config.dim), changed(x.row(0), x.row(0) + 8);
  double log_det = 0;
  flow.forward(x.row(0), 1, u.data(), &log_det);
  for (int j = 0; j < config.dim; ++j) {
    changed[order[j]] += 3.0;
    flow.forward(changed.data(), 1, u_changed.data(), &log_det);
    for (int k = 0; k < j; ++k) EXPECT_EQ(u_changed[order[k]], u[order[k]]) << j << " " << k;
    EXPECT_NE(u_changed[order[j]], u[order[j]]);
    changed[order[j]] = x(0, order[j]);
  }
}

TEST(MadeLayer, HiddenDegreesSpreadOverAllInputsWhenUnitsAreFewerThanInputs) {
  MafConfig config;
  config.dim = 784;
  config.layers = 1;
  config.hidden = 256;
  config.hidden_layers = 1;
  const BasicMaf<float> flow(config);
  const std::vector<int>& degrees = flow.made_layers()[0].hidden_degrees;
  EXPECT_EQ(degrees.front(), 1);
  EXPECT_GE(degrees.back(), 780);
  EXPECT_TRUE(std::is_sorted(degrees.begin(), degrees.end()));
  // The last output sees every hidden unit, so it depends on inputs up to position 780+.
  EXPECT_EQ(flow.made_layers()[0].out_prefix.back(), config.hidden);
}

// --- Initialization, sampling, batching, threads ---------------------------------------------

TEST(Maf, FreshFlowIsTheIdentityWithStandardNormalDensity) {
  for (const bool batch_norm : {false, true}) {
    MafConfig config;
    config.dim = 4;
    config.batch_norm = batch_norm;
    const BasicMaf<double> flow(config);
    const Matrix<double> x = normal_rows<double>(20, 4, 1);
    const std::vector<double> log_p = flow.log_prob(x);
    for (std::size_t r = 0; r < x.rows(); ++r) {
      double expected = 0;
      for (int d = 0; d < 4; ++d) expected += -0.5 * x(r, d) * x(r, d) - 0.5 * std::log(2 * M_PI);
      // Batch norm's epsilon (1e-5 on a unit variance) is the only departure.
      EXPECT_NEAR(log_p[r], expected, batch_norm ? 1e-3 : 1e-12);
    }
  }
}

TEST(Maf, SamplesDoNotDependOnBatchSplitOrThreadCount) {
  MafConfig config;
  config.dim = 6;
  config.hidden = 24;
  config.batch_norm = true;
  Maf flow(config);
  randomize(flow, 4);

  set_num_threads(2);
  const Matrix<float> whole = flow.sample(500, 99);
  const Matrix<float> head = flow.sample(123, 99, 0);
  const Matrix<float> tail = flow.sample(377, 99, 123);
  set_num_threads(1);
  const Matrix<float> single = flow.sample(500, 99);
  set_num_threads(0);

  for (std::size_t r = 0; r < 500; ++r) {
    for (int d = 0; d < 6; ++d) {
      const float expected = whole(r, d);
      EXPECT_EQ(r < 123 ? head(r, d) : tail(r - 123, d), expected);
      EXPECT_EQ(single(r, d), expected);
    }
  }
}

TEST(Maf, LogProbDoesNotDependOnThreadCount) {
  MafConfig config;
  config.dim = 10;
  config.hidden = 64;
  Maf flow(config);
  randomize(flow, 6);
  const Matrix<float> x = normal_rows<float>(5000, 10, 3);
  set_num_threads(1);
  const std::vector<float> one = flow.log_prob(x);
  set_num_threads(2);
  const std::vector<float> two = flow.log_prob(x);
  set_num_threads(0);
  EXPECT_EQ(one, two);
}

TEST(Maf, FloatFlowAgreesWithDoubleFlow) {
  MafConfig config;
  config.dim = 5;
  BasicMaf<double> reference(config);
  randomize(reference, 8);
  const Maf flow = reference.cast<float>();
  const Matrix<double> x = normal_rows<double>(100, 5, 2);
  const std::vector<double> expected = reference.log_prob(x);
  const std::vector<float> actual = flow.log_prob(x.cast<float>());
  for (std::size_t r = 0; r < x.rows(); ++r) EXPECT_NEAR(actual[r], expected[r], 2e-4);
}

TEST(Maf, InvalidConfigurationNamesTheField) {
  MafConfig config;
  config.hidden = 0;
  try {
    Maf flow(config);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("hidden"), std::string::npos);
  }
}

TEST(Maf, ThreadCountsOutsideTheAcceptedRangeAreRefused) {
  EXPECT_THROW(set_num_threads(-1), InvalidArgument);
  EXPECT_THROW(set_num_threads(kMaxThreads + 1), InvalidArgument);

  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  set_num_threads(0);
}

TEST(Maf, LogProbRejectsDataOfAnotherDimension) {
  MafConfig config;
  config.dim = 3;
  const Maf flow(config);
  EXPECT_THROW(flow.log_prob(Matrix<float>(4, 2)), DataError);
}

}  // namespace
}  // namespace nfcal
