// The classifier interface, the callback classifier, the log Z estimator and the shared
// accept/reject arithmetic, checked against direct double-precision references.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/classifier.hpp"
#include "nfcal/error.hpp"

#include "common/accept.hpp"

namespace nfcal {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A callback that returns the first column as the margin.
CallbackClassifier first_column(double balance = 0.0) {
  return CallbackClassifier(
      2,
      [](const float* x, std::size_t n, int dim, float* out) {
        for (std::size_t i = 0; i < n; ++i) out[i] = x[i * dim];
      },
      balance);
}

TEST(CallbackClassifier, ReturnsTheCallableMarginsMinusTheBalance) {
  const CallbackClassifier clf = first_column(0.25);
  const Matrix<float> x(3, 2, std::vector<float>{1, 9, -2, 9, 0.5f, 9});

  const std::vector<float> m = clf.margins(x);

  ASSERT_EQ(m.size(), 3u);
  EXPECT_FLOAT_EQ(m[0], 0.75f);
  EXPECT_FLOAT_EQ(m[1], -2.25f);
  EXPECT_FLOAT_EQ(m[2], 0.25f);
  EXPECT_EQ(clf.num_features(), 2);
}

TEST(CallbackClassifier, NaNMarginIsADataErrorNamingTheRow) {
  const CallbackClassifier clf(2, [](const float*, std::size_t n, int, float* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = i == 3 ? std::nanf("") : 0.0f;
  });
  const Matrix<float> x(5, 2);

  try {
    clf.margins(x);
    FAIL() << "a NaN margin was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("row 3"), std::string::npos) << e.what();
  }
}

TEST(CallbackClassifier, RowsWithTheWrongColumnCountAreADataError) {
  const CallbackClassifier clf = first_column();
  EXPECT_THROW(clf.margins(Matrix<float>(4, 3)), DataError);
}

TEST(CallbackClassifier, EmptyFunctionOrZeroDimensionIsRejected) {
  EXPECT_THROW(CallbackClassifier(2, nullptr), InvalidArgument);
  EXPECT_THROW(CallbackClassifier(0, [](const float*, std::size_t, int, float*) {}),
               InvalidArgument);
}

TEST(EstimateLogZ, ConstantMarginGivesThatConstantWithZeroErrorAndFullESS) {
  const std::vector<float> m(1000, 1.75f);

  const LogZEstimate z = estimate_log_z(m.data(), m.size(), kInf);

  EXPECT_NEAR(z.log_z, 1.75, 1e-9);
  EXPECT_NEAR(z.se, 0.0, 1e-9);
  EXPECT_NEAR(z.ess, 1000.0, 1e-6);
  EXPECT_EQ(z.samples, 1000u);
}

TEST(EstimateLogZ, MatchesDirectDoubleSumsWithAndWithoutCeiling) {
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> m(5000);
  for (float& v : m) v = normal(gen);

  for (const double ceiling : {kInf, 1.0, 0.0}) {
    // Reference: plain sums of the weights in double.
    double s = 0, s2 = 0;
    for (const float v : m) {
      const double w = std::exp(std::min(static_cast<double>(v), ceiling));
      s += w;
      s2 += w * w;
    }
    const double n = static_cast<double>(m.size());
    const double mean = s / n;
    const double var = (s2 - n * mean * mean) / (n - 1);

    const LogZEstimate z = estimate_log_z(m.data(), m.size(), ceiling);

    EXPECT_NEAR(z.log_z, std::log(mean), 1e-9) << "ceiling " << ceiling;
    EXPECT_NEAR(z.se, std::sqrt(var / n) / mean, 1e-9) << "ceiling " << ceiling;
    EXPECT_NEAR(z.ess, s * s / s2, 1e-6) << "ceiling " << ceiling;
  }
}

TEST(EstimateLogZ, HugeMarginsDoNotOverflow) {
  const std::vector<float> m{1000.0f, 1000.0f, 999.0f, -1000.0f};

  const LogZEstimate z = estimate_log_z(m.data(), m.size(), kInf);

  const double reference = 1000.0 + std::log((2.0 + std::exp(-1.0)) / 4.0);
  EXPECT_NEAR(z.log_z, reference, 1e-9);
  EXPECT_TRUE(std::isfinite(z.se));
  EXPECT_FLOAT_EQ(static_cast<float>(z.max_margin), 1000.0f);
}

TEST(EstimateLogZ, NoSamplesOrNaNIsAnError) {
  const std::vector<float> nan{0.0f, std::nanf("")};
  EXPECT_THROW(estimate_log_z(nullptr, 0, kInf), InvalidArgument);
  EXPECT_THROW(estimate_log_z(nan.data(), nan.size(), kInf), DataError);
}

TEST(HeldoutGain, ConstantMarginGainsNothing) {
  const std::vector<float> data(50, 2.5f), flow(80, 2.5f);
  EXPECT_NEAR(heldout_gain(data, flow, kInf), 0.0, 1e-9);
}

TEST(HeldoutGain, IsMeanClippedDataMarginMinusLogMeanExpOfClippedFlowMargins) {
  const std::vector<float> data{1.0f, 3.0f}, flow{-1.0f, 0.0f, 2.0f};
  const double ceiling = 1.5;

  const double reference =
      (1.0 + 1.5) / 2.0 - std::log((std::exp(-1.0) + 1.0 + std::exp(1.5)) / 3.0);
  EXPECT_NEAR(heldout_gain(data, flow, ceiling), reference, 1e-9);
}

TEST(AcceptMath, ClippedMarginRemovesBalanceAndClipsAtTheCeiling) {
  EXPECT_FLOAT_EQ(calib::clipped_margin(3.0f, 1.0f, 1.5f), 1.5f);
  EXPECT_FLOAT_EQ(calib::clipped_margin(2.0f, 1.0f, 1.5f), 1.0f);
  EXPECT_FLOAT_EQ(calib::clipped_margin(50.0f, 0.0f, INFINITY), 50.0f);
  EXPECT_TRUE(std::isnan(calib::clipped_margin(std::nanf(""), 0.0f, 1.0f)));
}

TEST(AcceptMath, AcceptsExactlyWhenLogUIsBelowClippedMinusCeiling) {
  EXPECT_TRUE(calib::accept(std::log(0.3f), std::log(0.5f), 0.0f));
  EXPECT_FALSE(calib::accept(std::log(0.6f), std::log(0.5f), 0.0f));
  // A margin at the ceiling accepts every u < 1.
  EXPECT_TRUE(calib::accept(std::log(0.999f), 2.0f, 2.0f));
}

TEST(AcceptMath, KeyedAcceptanceRateMatchesExpOfMarginMinusCeiling) {
  // Margin 0, ceiling log 4: acceptance 1/4, binomial error about 0.0019 at n = 50,000.
  const float ceiling = std::log(4.0f);
  int accepted = 0;
  const int n = 50000;
  for (int i = 0; i < n; ++i) accepted += calib::accept_candidate(11, i, 0.0f, ceiling) ? 1 : 0;
  EXPECT_NEAR(accepted / static_cast<double>(n), 0.25, 0.01);
}

TEST(AcceptMath, MergingPartialLogSumExpsEqualsOneSequentialPass) {
  std::vector<double> v{-3, 5, 2, 700, -1, 699.5, 0};
  calib::LogSumExp all, left, right;
  for (std::size_t i = 0; i < v.size(); ++i) {
    all.add(v[i]);
    (i < 3 ? left : right).add(v[i]);
  }
  left.merge(right);

  EXPECT_NEAR(left.log_mean_exp(), all.log_mean_exp(), 1e-12);
  EXPECT_NEAR(left.effective_sample_size(), all.effective_sample_size(), 1e-9);
  EXPECT_EQ(left.count, all.count);
}

}  // namespace
}  // namespace nfcal
