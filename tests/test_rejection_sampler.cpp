// The rejection sampler: every candidate accepted when P = Q, exact draws from a known target,
// draws from the clipped density at the predicted rate, independence from batch size, and the
// candidate cap.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/error.hpp"
#include "nfcal/rejection_sampler.hpp"

#include "calibration_fixtures.hpp"

namespace nfcal {
namespace {

using testing::broad_gaussian_flow;
using testing::column_moments;
using testing::constant_classifier;
using testing::GaussianTarget;
using testing::ks_critical;
using testing::ks_distance;
using testing::normal_cdf;
constexpr double kInf = std::numeric_limits<double>::infinity();

const GaussianTarget kTarget{{1.0, -0.5}, {0.8, 1.2}, 2.0};

// The exact target model: no clipping below the supremum of the log ratio.
CalibratedFlow exact_target_model() {
  const Maf flow = broad_gaussian_flow(2, kTarget.flow_scale);
  const auto clf = kTarget.classifier();
  const double ceiling = kTarget.max_log_ratio() + 0.01;
  return CalibratedFlow(flow, clf, ceiling, estimate_flow_log_z(flow, *clf, ceiling, 100000, 1));
}

TEST(RejectionSampler, ZeroMarginWithZeroCeilingAcceptsEveryCandidate) {
  const Maf flow = broad_gaussian_flow(3, 1.0);
  const auto clf = constant_classifier(3, 0.0f);
  const CalibratedFlow model(flow, clf, 0.0, estimate_flow_log_z(flow, *clf, 0.0, 100, 1));
  SamplerReport report;

  const Matrix<float> x = sample_calibrated(model, 5000, {/*seed=*/4}, &report);

  EXPECT_EQ(report.accepted, report.candidates);
  EXPECT_DOUBLE_EQ(report.acceptance_measured, 1.0);
  // Accepting everything in order returns exactly the flow's own samples.
  EXPECT_EQ(x.values(), flow.sample(5000, 4).values());
}

TEST(RejectionSampler, KnownRatioDrawsPassKolmogorovSmirnovAndMomentsAgainstTheTarget) {
  const CalibratedFlow model = exact_target_model();
  const std::size_t n = 20000;
  SamplerReport report;

  const Matrix<float> x = sample_calibrated(model, n, {/*seed=*/5}, &report);

  for (int d = 0; d < 2; ++d) {
    const double mean = kTarget.mean[d], sd = kTarget.sd[d];
    EXPECT_LT(ks_distance(x, d, [&](double v) { return normal_cdf(v, mean, sd); }), ks_critical(n))
        << "column " << d;
    const auto [m, var] = column_moments(x, d);
    EXPECT_NEAR(m, mean, 4 * sd / std::sqrt(n)) << "column " << d;
    // The variance of a sample variance of a normal is 2 sd^4 / (n - 1).
    EXPECT_NEAR(var, sd * sd, 4 * sd * sd * std::sqrt(2.0 / (n - 1))) << "column " << d;
  }
  // Against the flow itself the same test fails: it is not the flow's distribution.
  EXPECT_GT(ks_distance(x, 0, [](double v) { return normal_cdf(v, 0.0, 2.0); }), ks_critical(n));
  EXPECT_EQ(x.rows(), n);
  EXPECT_TRUE(report.exact);
}

// Moments of the clipped density Q_L over column 0 and the normalizer Z_L, by integration on
// a fine grid: an independent reference for the sampler.
struct GridMoments {
  double z = 0, mean0 = 0, second0 = 0;
};

GridMoments clipped_moments(double ceiling) {
  const int steps = 600;
  const double lo = -12, hi = 12, h = (hi - lo) / steps;
  GridMoments g;
  float x[2];
  for (int i = 0; i < steps; ++i) {
    for (int j = 0; j < steps; ++j) {
      x[0] = static_cast<float>(lo + (i + 0.5) * h);
      x[1] = static_cast<float>(lo + (j + 0.5) * h);
      const double log_p = kTarget.log_p(x);
      const double m = std::min(kTarget.log_q(x) - log_p, ceiling);
      const double w = std::exp(log_p + m) * h * h;
      g.z += w;
      g.mean0 += w * x[0];
      g.second0 += w * x[0] * x[0];
    }
  }
  g.mean0 /= g.z;
  g.second0 /= g.z;
  return g;
}

TEST(RejectionSampler, ClippedModelIsSampledAtTheRateZLOverExpL) {
  const Maf flow = broad_gaussian_flow(2, kTarget.flow_scale);
  const auto clf = kTarget.classifier();
  const double ceiling = -1.0;  // well below sup log q/p, so clipping bites
  const CalibratedFlow model(flow, clf, ceiling,
                             estimate_flow_log_z(flow, *clf, ceiling, 200000, 2));
  const GridMoments grid = clipped_moments(ceiling);
  SamplerReport report;

  const Matrix<float> x = sample_calibrated(model, 20000, {/*seed=*/6}, &report);

  // Predicted rate against the grid's Z_L, and measured against predicted.
  const double exact_rate = grid.z / std::exp(ceiling);
  EXPECT_NEAR(report.acceptance_predicted, exact_rate, 4 * model.log_z_se() * exact_rate);
  const double binomial_se =
      std::sqrt(exact_rate * (1 - exact_rate) / static_cast<double>(report.candidates));
  EXPECT_NEAR(report.acceptance_measured, exact_rate, 4 * binomial_se);

  // Samples follow the clipped density, whose mean lies well short of the target's.
  const auto [mean, var] = column_moments(x, 0);
  const double sd = std::sqrt(grid.second0 - grid.mean0 * grid.mean0);
  EXPECT_NEAR(mean, grid.mean0, 4 * sd / std::sqrt(20000.0));
  EXPECT_NEAR(var, sd * sd, 0.05 * sd * sd);
  EXPECT_GT(std::abs(grid.mean0 - kTarget.mean[0]), 20 * sd / std::sqrt(20000.0))
      << "the test needs a ceiling that separates clipped from unclipped";
}

TEST(RejectionSampler, SameSeedGivesIdenticalSamplesForEveryBatchSize) {
  const CalibratedFlow model = exact_target_model();
  SamplerOptions options;
  options.seed = 21;
  const Matrix<float> automatic = sample_calibrated(model, 3000, options);

  for (const std::size_t batch : {1u, 97u, 1000u, 50000u}) {
    options.batch_size = batch;
    EXPECT_EQ(sample_calibrated(model, 3000, options).values(), automatic.values())
        << "batch " << batch;
  }
  options = SamplerOptions{};
  options.seed = 22;
  EXPECT_NE(sample_calibrated(model, 3000, options).values(), automatic.values());
}

TEST(RejectionSampler, FewerSamplesArePrefixesOfMoreWithTheSameSeed) {
  const CalibratedFlow model = exact_target_model();
  const Matrix<float> many = sample_calibrated(model, 2000, {/*seed=*/8});
  const Matrix<float> few = sample_calibrated(model, 300, {/*seed=*/8});
  EXPECT_EQ(few.values(), many.slice_rows(0, 300).values());
}

TEST(RejectionSampler, CandidateCapEndsALowAcceptanceRunWithTheMeasuredRate) {
  const Maf flow = broad_gaussian_flow(2, 1.0);
  const auto clf = constant_classifier(2, 0.0f);
  const double ceiling = std::log(1000.0);  // acceptance 1e-3
  const CalibratedFlow model(flow, clf, ceiling, estimate_flow_log_z(flow, *clf, ceiling, 10, 1));
  SamplerOptions options;
  options.max_candidates = 20000;
  SamplerReport report;

  try {
    sample_calibrated(model, 1000, options, &report);
    FAIL() << "sampling past the cap did not stop";
  } catch (const SamplingError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("measured acceptance"), std::string::npos) << message;
    EXPECT_NE(message.find("ceiling"), std::string::npos) << message;
  }
  EXPECT_EQ(report.candidates, 20000u);
  EXPECT_LT(report.accepted, 1000u);
}

TEST(RejectionSampler, ZeroSamplesDrawsNothing) {
  const CalibratedFlow model = exact_target_model();
  SamplerReport report;
  const Matrix<float> x = sample_calibrated(model, 0, {}, &report);
  EXPECT_EQ(x.rows(), 0u);
  EXPECT_EQ(report.candidates, 0u);
}

TEST(RejectionSampler, WithoutCeilingTheReportSaysSamplingIsApproximate) {
  const Maf flow = broad_gaussian_flow(2, kTarget.flow_scale);
  const auto clf = kTarget.classifier();
  const LogZEstimate z = estimate_flow_log_z(flow, *clf, kInf, 20000, 3);
  const CalibratedFlow model(flow, clf, kInf, z, z.max_margin + 0.1);
  SamplerReport report;

  sample_calibrated(model, 1000, {/*seed=*/2}, &report);

  EXPECT_FALSE(report.exact);
  EXPECT_NE(report.summary().find("approximate"), std::string::npos);
  EXPECT_DOUBLE_EQ(report.bound, static_cast<float>(z.max_margin + 0.1));
}

}  // namespace
}  // namespace nfcal
