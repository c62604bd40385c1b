// The report of a run: metrics.json and report.md contents, density grids, and running the
// plotting step (with stand-in scripts, so the tests need no Python).
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"

#include "report/report.hpp"

namespace nfcal::report {
namespace {

RunResults sample_results() {
  RunResults r;
  r.dataset = "two-moons";
  r.source = "built-in";
  r.dim = 2;
  r.train_rows = 800;
  r.test_rows = 200;
  r.flow_ll = {-0.5471, 0.0273};
  r.calibrated_ll = {-0.4587, 0.0268};
  r.gain = {0.0884, 0.0089};
  r.auc = 0.614;
  r.log_z = 0.0015;
  r.log_z_se = 0.0013;
  r.ceiling = 0.75;
  r.acceptance_predicted = 0.473;
  r.acceptance_measured = 0.486;
  r.seconds = {{"fit flow", 2.0}, {"calibrate", 1.5}};
  return r;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ReportTest, EstimateIsTheMeanAndItsStandardError) {
  const Estimate e = estimate_mean({1.0, 2.0, 3.0, 6.0});
  EXPECT_DOUBLE_EQ(e.mean, 3.0);
  // Sample variance (4 + 1 + 0 + 9) / 3, divided by n = 4.
  EXPECT_NEAR(e.se, std::sqrt(14.0 / 3.0 / 4.0), 1e-12);
  EXPECT_EQ(estimate_mean({5.0}).se, 0.0);
  EXPECT_TRUE(std::isnan(estimate_mean({}).mean));
}

TEST(ReportTest, MetricsJsonHoldsTheTableNumbersWithMissingOnesAsNull) {
  RunResults r = sample_results();
  r.ceiling = std::numeric_limits<double>::infinity();
  const nlohmann::json j = nlohmann::json::parse(metrics_json(r, {false, {}, "no matplotlib"}));
  EXPECT_EQ(j["dataset"], "two-moons");
  EXPECT_DOUBLE_EQ(j["test_log_likelihood"]["mean"].get<double>(), -0.5471);
  EXPECT_DOUBLE_EQ(j["calibrated_test_log_likelihood"]["standard_error"].get<double>(), 0.0268);
  EXPECT_TRUE(j["true_test_log_likelihood"].is_null());
  EXPECT_TRUE(j["exact_ratio_test_log_likelihood"].is_null());
  EXPECT_TRUE(j["gap_closed"].is_null());
  EXPECT_TRUE(j["calibrated_model"]["ceiling"].is_null());
  EXPECT_DOUBLE_EQ(j["classifier"]["auc"].get<double>(), 0.614);
  EXPECT_DOUBLE_EQ(j["seconds"]["total"].get<double>(), 3.5);
  EXPECT_EQ(j["plots"]["reason"], "no matplotlib");
  EXPECT_FALSE(j.contains("pixel_space"));
}

TEST(ReportTest, MarkdownTableShowsBothModelsAndTheTruthOnlyWhenKnown) {
  RunResults r = sample_results();
  const std::string without = report_markdown(r, {true, {"density.png"}, ""});
  EXPECT_TRUE(contains(without, "| flow (MAF) | -0.5471 | 0.0273 |"));
  EXPECT_TRUE(contains(without, "| calibrated (flow + classifier) | -0.4587 | 0.0268 |"));
  EXPECT_TRUE(contains(without, "| acceptance, measured | 48.6%"));
  EXPECT_TRUE(contains(without, "![density.png](density.png)"));
  EXPECT_FALSE(contains(without, "true density"));
  EXPECT_FALSE(contains(without, "skipped"));

  r.true_ll = {-0.3089, 0.0167};
  const std::string with = report_markdown(r, {false, {}, "no Python with matplotlib"});
  EXPECT_TRUE(contains(with, "| true density | -0.3089 | 0.0167 |"));
  EXPECT_TRUE(contains(with, "Pictures were skipped: no Python with matplotlib"));
}

TEST(ReportTest, GapShareIsTheRatioOfMeanGainToMeanGap) {
  // Gains 0.1, 0.3, 0.2 on gaps 0.4, 0.6, 0.5: the share is 0.6 / 1.5.
  const std::vector<double> flow = {-1.0, -2.0, -3.0};
  const std::vector<double> model = {-0.9, -1.7, -2.8};
  const std::vector<double> truth = {-0.6, -1.4, -2.5};
  const Estimate share = gap_share(flow, model, truth);
  EXPECT_NEAR(share.mean, 0.4, 1e-12);
  // Residuals of (model - flow) - 0.4 (truth - flow): -0.06, 0.06, 0; mean gap 0.5.
  EXPECT_NEAR(share.se, std::sqrt(0.0072 / 2 / 3) / 0.5, 1e-12);

  // A model that closes the same share of every row's gap has no sampling error.
  const Estimate exact = gap_share({-1.0, -2.0}, {-0.75, -1.5}, {0.0, 0.0});
  EXPECT_NEAR(exact.mean, 0.25, 1e-12);
  EXPECT_NEAR(exact.se, 0.0, 1e-12);
}

TEST(ReportTest, GapShareIsMissingWithoutAGapOrWithMismatchedRows) {
  EXPECT_TRUE(std::isnan(gap_share({}, {}, {}).mean));
  EXPECT_TRUE(std::isnan(gap_share({-1.0, -2.0}, {-1.0}, {0.0, 0.0}).mean));
  EXPECT_TRUE(std::isnan(gap_share({-1.0}, {-0.5}, {-1.0}).mean));  // flow equals the truth
  EXPECT_TRUE(std::isnan(gap_share({-1.0}, {-0.5}, {-2.0}).mean));  // flow above the truth
  const Estimate one = gap_share({-1.0}, {-0.5}, {0.0});
  EXPECT_DOUBLE_EQ(one.mean, 0.5);
  EXPECT_DOUBLE_EQ(one.se, 0.0);
}

// The standard error is what it claims to be: across independent test sets drawn from one
// population of rows, the shares scatter by about the standard errors they report.
TEST(ReportTest, GapShareStandardErrorMatchesTheScatterOfRepeatedTestSets) {
  std::mt19937_64 rng(11);
  std::gamma_distribution<double> gap_of_row(0.7, 0.5);  // skewed, as real per-row gaps are
  std::normal_distribution<double> noise(0.0, 0.15);
  constexpr int kSets = 400;
  constexpr int kRows = 500;
  double sum = 0, sum_squares = 0, se_sum = 0;
  for (int set = 0; set < kSets; ++set) {
    std::vector<double> flow(kRows), model(kRows), truth(kRows);
    for (int i = 0; i < kRows; ++i) {
      flow[i] = -2.0 + noise(rng);
      truth[i] = flow[i] + gap_of_row(rng);
      model[i] = flow[i] + 0.4 * (truth[i] - flow[i]) + noise(rng);
    }
    const Estimate share = gap_share(flow, model, truth);
    sum += share.mean;
    sum_squares += share.mean * share.mean;
    se_sum += share.se;
  }
  const double mean = sum / kSets;
  const double scatter = std::sqrt((sum_squares - kSets * mean * mean) / (kSets - 1));
  EXPECT_NEAR(mean, 0.4, 3 * scatter / std::sqrt(kSets));
  // 400 sets estimate the scatter to within about 4% (one standard error).
  EXPECT_NEAR(se_sum / kSets / scatter, 1.0, 0.12);
}

TEST(ReportTest, GapClosedComparesTheModelWithTheExactRatioReference) {
  RunResults r = sample_results();
  nlohmann::json j = nlohmann::json::parse(metrics_json(r, {}));
  EXPECT_TRUE(j["gap_closed"].is_null());  // no truth, no gap
  EXPECT_TRUE(j["exact_ratio_gap_closed"].is_null());

  r.true_ll = {-0.3471, 0.0167};
  r.exact_ratio_ll = {-0.3971, 0.0201};
  r.gap_closed = {0.442, 0.031};
  r.exact_ratio_gap_closed = {0.75, 0.02};
  j = nlohmann::json::parse(metrics_json(r, {}));
  EXPECT_DOUBLE_EQ(j["gap_closed"]["mean"].get<double>(), 0.442);
  EXPECT_DOUBLE_EQ(j["gap_closed"]["standard_error"].get<double>(), 0.031);
  EXPECT_DOUBLE_EQ(j["exact_ratio_gap_closed"]["mean"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(j["exact_ratio_test_log_likelihood"]["mean"].get<double>(), -0.3971);
  const std::string md = report_markdown(r, {});
  EXPECT_TRUE(contains(md, "| flow calibrated by the exact density ratio, same ceiling | -0.3971"));
  EXPECT_TRUE(contains(md, "Calibration closed 44.2% +- 3.1% of the flow's gap"));
  EXPECT_TRUE(contains(md, "same ceiling, closes 75.0% +- 2.0%"));

  // Without a share (a flow at or above the truth) the sentence is left out.
  r.gap_closed = {};
  EXPECT_FALSE(contains(report_markdown(r, {}), "Calibration closed"));
}

TEST(ReportTest, ImageRunsReportBitsPerPixel) {
  RunResults r = sample_results();
  r.pixel_space = {true, 784, 1e-6, {-2000, 3}, {-1990, 3}, {3.68, 0.01}, {3.66, 0.01}};
  const std::string md = report_markdown(r, {});
  EXPECT_TRUE(contains(md, "bits per pixel"));
  EXPECT_TRUE(contains(md, "| flow | -2000.00 | 3.00 | 3.6800 | 0.0100 |"));
  const nlohmann::json j = nlohmann::json::parse(metrics_json(r, {}));
  EXPECT_DOUBLE_EQ(j["pixel_space"]["calibrated_bits_per_pixel"]["mean"].get<double>(), 3.66);
}

TEST(ReportTest, GridCoversTheDataButNotAFarOutlier) {
  Matrix<float> x(2001, 2);
  for (std::size_t i = 0; i < 2000; ++i) {
    x(i, 0) = static_cast<float>(i) / 1999.0f;                 // [0, 1]
    x(i, 1) = -2.0f + 4.0f * static_cast<float>(i) / 1999.0f;  // [-2, 2]
  }
  x(2000, 0) = 1000.0f;
  const Grid g = grid_around(x, 50, 0.1);
  EXPECT_LT(g.x_min, 0.0);
  EXPECT_GT(g.x_max, 1.0);
  EXPECT_LT(g.x_max, 2.0);
  EXPECT_LT(g.y_min, -2.0);
  EXPECT_GT(g.y_max, 2.0);

  // Points run along x first, one image row per y value.
  const Matrix<float> p = g.points();
  ASSERT_EQ(p.rows(), 2500u);
  EXPECT_FLOAT_EQ(p(0, 0), static_cast<float>(g.x_min));
  EXPECT_FLOAT_EQ(p(49, 0), static_cast<float>(g.x_max));
  EXPECT_FLOAT_EQ(p(49, 1), static_cast<float>(g.y_min));
  EXPECT_FLOAT_EQ(p(2499, 1), static_cast<float>(g.y_max));
  EXPECT_THROW(grid_around(Matrix<float>(3, 1), 50), InvalidArgument);
}

TEST(ReportTest, PlottingCollectsTheWrittenPicturesAndReportsFailures) {
  const std::string folder = ::testing::TempDir();
  write_file_atomically(folder + "good.sh", "echo 'wrote density.png'; echo 'wrote samples.png'\n");
  write_file_atomically(folder + "bad.sh",
                        "echo 'wrote density.png'; echo 'ran out of ink' >&2; "
                        "exit 3\n");
  const PlotOutcome good = make_plots("/bin/sh", folder + "good.sh", folder);
  EXPECT_TRUE(good.made);
  EXPECT_EQ(good.files, (std::vector<std::string>{"density.png", "samples.png"}));
  EXPECT_TRUE(good.reason.empty());

  const PlotOutcome bad = make_plots("/bin/sh", folder + "bad.sh", folder);
  EXPECT_EQ(bad.files, std::vector<std::string>{"density.png"});
  EXPECT_TRUE(contains(bad.reason, "status 3")) << bad.reason;
  EXPECT_TRUE(contains(bad.reason, "ran out of ink")) << bad.reason;
}

TEST(ReportTest, AMissingPythonIsExplainedNotThrown) {
  ::setenv("NFCAL_PYTHON", "/nonexistent/python3", 1);
  std::string why;
  EXPECT_EQ(find_python(&why), "");
  EXPECT_TRUE(contains(why, "/nonexistent/python3")) << why;
  EXPECT_TRUE(contains(why, "python3-matplotlib")) << why;
  ::unsetenv("NFCAL_PYTHON");

  ::setenv("NFCAL_PLOT_SCRIPT", "/nonexistent/plot.py", 1);
  EXPECT_EQ(find_plot_script("/usr/bin"), "");
  ::unsetenv("NFCAL_PLOT_SCRIPT");
  EXPECT_EQ(find_plot_script("/nonexistent"), "");
}

}  // namespace
}  // namespace nfcal::report
