// CPU tests of the per-element MAF arithmetic the CUDA kernels share (kernels/common/maf_math.hpp).

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "common/maf_math.hpp"
#include "maf/activation.hpp"

namespace nfcal::maf_math {
namespace {

TEST(MafMath, ActivationDerivativesMatchFiniteDifferences) {
  for (int activation : {kRelu, kTanh, kElu}) {
    for (double z : {-2.5, -0.7, -0.01, 0.02, 0.9, 3.0}) {
      const double step = 1e-6;
      const double numeric =
          (activate(z + step, activation) - activate(z - step, activation)) / (2 * step);
      EXPECT_NEAR(activation_derivative(z, activate(z, activation), activation), numeric, 1e-8)
          << "activation " << activation << " at " << z;
    }
  }
}

TEST(MafMath, ArrayActivationsAgreeWithThePerElementDefinition) {
  // A dense sweep through the range where tanh and expm1 bend, plus saturation and signed zero.
  std::vector<float> z;
  for (int i = -4000; i <= 4000; ++i) z.push_back(static_cast<float>(i) * 0.003f);
  for (float edge : {-100.0f, -20.0f, -9.5f, 9.5f, 20.0f, 100.0f, -0.0f, 1e-30f, -1e-30f}) {
    z.push_back(edge);
  }

  for (int activation : {kRelu, kTanh, kElu}) {
    std::vector<float> vectorized(z.size());
    detail::activate_array(z.data(), z.size(), activation, vectorized.data());
    for (std::size_t i = 0; i < z.size(); ++i) {
      const double exact = activate(static_cast<double>(z[i]), activation);
      // A few float ulps of the result, or of 1 where the result crosses zero.
      const double tolerance = 4 * std::numeric_limits<float>::epsilon() *
                               std::max(std::fabs(exact), activation == kRelu ? 0.0 : 1e-3);
      EXPECT_NEAR(vectorized[i], exact, tolerance) << "activation " << activation << " at " << z[i];
    }
  }
}

TEST(MafMath, ArrayActivationsWorkInPlaceAndInDouble) {
  std::vector<double> z = {-3.0, -0.5, 0.0, 0.25, 4.0};
  const std::vector<double> original = z;
  detail::activate_array(z.data(), z.size(), kTanh, z.data());
  for (std::size_t i = 0; i < z.size(); ++i) {
    EXPECT_NEAR(z[i], std::tanh(original[i]), 1e-15) << "at " << original[i];
  }
}

TEST(MafMath, BoundedLogScaleStaysInsideTheBoundAndIsNearIdentityAtZero) {
  const double bound = 6.0;
  for (double raw : {-1e6, -50.0, -6.0, 0.0, 1e-3, 6.0, 1e6}) {
    const double alpha = bounded_log_scale(raw, bound);
    EXPECT_LE(std::fabs(alpha), bound);
    EXPECT_TRUE(std::isfinite(std::exp(alpha)));
  }
  EXPECT_NEAR(bounded_log_scale(1e-3, bound), 1e-3, 1e-9);
  const double step = 1e-6;
  for (double raw : {-4.0, 0.3, 2.0}) {
    const double numeric =
        (bounded_log_scale(raw + step, bound) - bounded_log_scale(raw - step, bound)) / (2 * step);
    EXPECT_NEAR(bounded_log_scale_derivative(raw, bound), numeric, 1e-8);
  }
}

TEST(MafMath, AffineStepsInvertEachOther) {
  for (double alpha : {-5.0, -0.5, 0.0, 1.5, 5.5}) {
    const double y = 1.25;
    const double mu = -0.75;
    const double u = affine_to_noise(y, mu, alpha);
    EXPECT_NEAR(affine_from_noise(u, mu, alpha), y, 1e-12);
    EXPECT_NEAR(u, (y - mu) * std::exp(-alpha), 1e-12);
  }
  // Float overloads stay in float and agree with double.
  EXPECT_NEAR(affine_from_noise(0.5f, 0.25f, 1.0f), 0.5 * std::exp(1.0) + 0.25, 1e-6);
}

TEST(MafMath, StandardNormalLogDensityMatchesTheFormula) {
  EXPECT_NEAR(standard_normal_log_density(0.0, 1), -0.5 * std::log(2 * M_PI), 1e-15);
  EXPECT_NEAR(standard_normal_log_density(4.0, 3), -2.0 - 1.5 * std::log(2 * M_PI), 1e-14);
}

TEST(MafMath, HiddenDegreesAreSortedAndCoverTheRangeEvenly) {
  for (int dim : {1, 2, 3, 8, 100, 784}) {
    for (int hidden : {1, 7, 64, 256, 1024}) {
      const int max_degree = dim > 1 ? dim - 1 : 1;
      int previous = 0;
      for (int unit = 0; unit < hidden; ++unit) {
        const int degree = hidden_degree(unit, hidden, dim);
        ASSERT_GE(degree, 1);
        ASSERT_LE(degree, max_degree);
        ASSERT_GE(degree, previous);
        previous = degree;
      }
      EXPECT_EQ(hidden_degree(0, hidden, dim), 1);
      // The last unit reaches to within one step of the top degree.
      const double step = static_cast<double>(max_degree) / hidden;
      EXPECT_GE(hidden_degree(hidden - 1, hidden, dim), max_degree - step);
    }
  }
}

}  // namespace
}  // namespace nfcal::maf_math
