// The exact-ratio reference: the calibrated model whose classifier is the exact log density
// ratio, checked against closed forms and an independent Monte Carlo estimate.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/error.hpp"
#include "nfcal/evaluate.hpp"

#include "calibration_fixtures.hpp"

namespace nfcal {
namespace {

using testing::broad_gaussian_flow;
using testing::GaussianTarget;
using testing::log_normal;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kFlowScale = 2.0;

// Mean and standard error of the mean.
std::pair<double, double> mean_se(const std::vector<double>& v) {
  double sum = 0, squares = 0;
  for (double x : v) sum += x;
  const double n = static_cast<double>(v.size());
  const double mean = sum / n;
  for (double x : v) squares += (x - mean) * (x - mean);
  return {mean, std::sqrt(squares / (n - 1) / n)};
}

// The log density of a diagonal Gaussian target, as the reference takes it.
LogDensityFunction target_density(const GaussianTarget& target) {
  return [target](const Matrix<double>& x) {
    std::vector<double> out(x.rows());
    for (std::size_t i = 0; i < x.rows(); ++i) {
      for (std::size_t d = 0; d < x.cols(); ++d) {
        out[i] += log_normal(x(i, d), target.mean[d], target.sd[d]);
      }
    }
    return out;
  };
}

// The flow's own density, N(0, kFlowScale^2 I), written out independently of the flow.
std::vector<double> flow_density(const Matrix<double>& x) {
  std::vector<double> out(x.rows());
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (std::size_t d = 0; d < x.cols(); ++d) out[i] += log_normal(x(i, d), 0.0, kFlowScale);
  }
  return out;
}

TEST(ExactRatioReference, TheFlowsOwnDensityLeavesTheFlowWithLogZZero) {
  const Maf flow = broad_gaussian_flow(3, kFlowScale);
  const GaussianTarget target{{0.5, 0.0, -1.0}, {1.0, 0.7, 1.3}, kFlowScale};
  const Matrix<float> test = target.draws(500, 3);

  const ExactRatioReference r = exact_ratio_reference(flow, flow_density, test, 1.0, 20000, 4);

  const std::vector<float> flow_ll = flow.log_prob(test);
  const double flow_mean = mean_se({flow_ll.begin(), flow_ll.end()}).first;
  EXPECT_NEAR(r.log_z, 0.0, 1e-5);
  EXPECT_NEAR(r.log_likelihood, flow_mean, 1e-4);
}

TEST(ExactRatioReference, WithoutACeilingItIsTheTargetDensity) {
  const Maf flow = broad_gaussian_flow(2, kFlowScale);
  const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, kFlowScale};
  const Matrix<float> test = target.draws(2000, 11);

  const ExactRatioReference r =
      exact_ratio_reference(flow, target_density(target), test, kInf, 100000, 12);

  // Z = E_P[q / P] = 1, so the model is q itself, up to log Z's Monte Carlo error.
  const std::vector<double> truth = target_density(target)(test.cast<double>());
  EXPECT_LT(std::abs(r.log_z), 4 * r.log_z_se + 1e-4);
  EXPECT_NEAR(r.log_likelihood, mean_se(truth).first, 4 * r.log_z_se + 1e-4);

  // Row by row as well: every row's density is q's, shifted by the same log Z.
  ASSERT_EQ(r.log_prob.size(), test.rows());
  for (std::size_t i = 0; i < test.rows(); ++i) {
    ASSERT_NEAR(r.log_prob[i], truth[i] - r.log_z, 1e-3) << "row " << i;
  }
}

TEST(ExactRatioReference, WithACeilingItMatchesAnIndependentMonteCarloEstimate) {
  const Maf flow = broad_gaussian_flow(2, kFlowScale);
  const GaussianTarget target{{1.5, -1.0}, {0.5, 0.6}, kFlowScale};
  const Matrix<float> test = target.draws(2000, 21);
  const double ceiling = 1.0;

  const ExactRatioReference r =
      exact_ratio_reference(flow, target_density(target), test, ceiling, 200000, 22);

  // Z_L from exact draws of N(0, s^2 I) made here, not by the library's sampler.
  std::mt19937_64 gen(23);
  std::normal_distribution<double> normal(0.0, kFlowScale);
  std::vector<double> weights(200000);
  for (double& w : weights) {
    const float x[2] = {static_cast<float>(normal(gen)), static_cast<float>(normal(gen))};
    w = std::exp(std::min(target.log_q(x) - target.log_p(x), ceiling));
  }
  const auto [z, z_se] = mean_se(weights);
  std::vector<double> clipped(test.rows());
  for (std::size_t i = 0; i < test.rows(); ++i) {
    const float* x = test.row(i);
    clipped[i] = target.log_p(x) + std::min(target.log_q(x) - target.log_p(x), ceiling);
  }
  const double expected = mean_se(clipped).first - std::log(z);
  EXPECT_NEAR(r.log_z, std::log(z), 4 * (r.log_z_se + z_se / z));
  EXPECT_NEAR(r.log_likelihood, expected, 4 * (r.log_z_se + z_se / z) + 1e-4);

  // The ceiling costs something here: the reference lies between the flow and the target.
  const std::vector<double> truth = target_density(target)(test.cast<double>());
  const std::vector<float> flow_ll = flow.log_prob(test);
  EXPECT_GT(r.log_likelihood, mean_se({flow_ll.begin(), flow_ll.end()}).first + 0.1);
  EXPECT_LT(r.log_likelihood, mean_se(truth).first - 0.05);
}

TEST(ExactRatioReference, ADensityThatVanishesGivesZeroWeightNotNaN) {
  // Uniform on [-1, 1]^2: minus infinity outside the square.
  const LogDensityFunction uniform = [](const Matrix<double>& x) {
    std::vector<double> out(x.rows(), -std::log(4.0));
    for (std::size_t i = 0; i < x.rows(); ++i) {
      if (std::abs(x(i, 0)) > 1 || std::abs(x(i, 1)) > 1) out[i] = -kInf;
    }
    return out;
  };
  std::mt19937_64 gen(31);
  std::uniform_real_distribution<float> side(-1.0f, 1.0f);
  Matrix<float> test(1000, 2);
  for (std::size_t i = 0; i < test.size(); ++i) test.data()[i] = side(gen);

  const ExactRatioReference r =
      exact_ratio_reference(broad_gaussian_flow(2, kFlowScale), uniform, test, kInf, 100000, 32);

  ASSERT_TRUE(std::isfinite(r.log_z));
  EXPECT_LT(std::abs(r.log_z), 4 * r.log_z_se + 1e-4);
  EXPECT_NEAR(r.log_likelihood, -std::log(4.0), 4 * r.log_z_se + 1e-4);
}

TEST(ExactRatioReference, ATargetNoFlowSampleReachesIsANamedError) {
  // Uniform on a square far outside the flow's mass: every flow sample has weight zero.
  const LogDensityFunction far_square = [](const Matrix<double>& x) {
    std::vector<double> out(x.rows(), 0.0);
    for (std::size_t i = 0; i < x.rows(); ++i) {
      if (x(i, 0) < 100 || x(i, 0) > 101 || x(i, 1) < 100 || x(i, 1) > 101) out[i] = -kInf;
    }
    return out;
  };
  const Matrix<float> test(20, 2, 100.5f);
  const Maf flow = broad_gaussian_flow(2, kFlowScale);
  for (const double ceiling : {1.0, kInf}) {
    try {
      exact_ratio_reference(flow, far_square, test, ceiling, 1000, 41);
      FAIL() << "a log Z of minus infinity was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("no flow sample of 1000"), std::string::npos)
          << e.what();
    }
  }
}

TEST(ExactRatioReference, RejectsBadInputByName) {
  const Maf flow = broad_gaussian_flow(2, kFlowScale);
  const Matrix<float> test(10, 2, 0.5f);
  EXPECT_THROW(exact_ratio_reference(flow, nullptr, test, 1.0, 100, 1), InvalidArgument);
  EXPECT_THROW(exact_ratio_reference(flow, flow_density, test, 1.0, 0, 1), InvalidArgument);
  EXPECT_THROW(exact_ratio_reference(flow, flow_density, Matrix<float>(10, 3, 0.5f), 1.0, 100, 1),
               DataError);
  Matrix<float> with_nan = test;
  with_nan(4, 1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(exact_ratio_reference(flow, flow_density, with_nan, 1.0, 100, 1), DataError);

  const LogDensityFunction short_answer = [](const Matrix<double>& x) {
    return std::vector<double>(x.rows() - 1, 0.0);
  };
  try {
    exact_ratio_reference(flow, short_answer, test, 1.0, 100, 1);
    FAIL() << "a log density with too few values was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("values for"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfcal
