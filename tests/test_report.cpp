// The report of a run: metrics.json and report.md contents, density grids, and running the
// plotting step (with stand-in scripts, so the tests need no Python).
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

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

TEST(ReportTest, GapClosedComparesTheModelWithTheExactRatioReference) {
  RunResults r = sample_results();
  EXPECT_TRUE(std::isnan(gap_closed(r, r.calibrated_ll)));  // no truth, no gap
  r.true_ll = {-0.3471, 0.0167};
  r.exact_ratio_ll = {-0.3971, 0.0201};
  // (-0.4587 + 0.5471) / 0.2 and (-0.3971 + 0.5471) / 0.2.
  EXPECT_NEAR(gap_closed(r, r.calibrated_ll), 0.442, 1e-9);
  EXPECT_NEAR(gap_closed(r, r.exact_ratio_ll), 0.75, 1e-9);

  const nlohmann::json j = nlohmann::json::parse(metrics_json(r, {}));
  EXPECT_NEAR(j["gap_closed"].get<double>(), 0.442, 1e-9);
  EXPECT_NEAR(j["exact_ratio_gap_closed"].get<double>(), 0.75, 1e-9);
  EXPECT_DOUBLE_EQ(j["exact_ratio_test_log_likelihood"]["mean"].get<double>(), -0.3971);
  const std::string md = report_markdown(r, {});
  EXPECT_TRUE(contains(md, "| flow calibrated by the exact density ratio, same ceiling | -0.3971"));
  EXPECT_TRUE(contains(md, "Calibration closed 44.2% of the flow's gap"));
  EXPECT_TRUE(contains(md, "same ceiling, closes 75.0%"));

  // A flow at or above the truth leaves no gap to close.
  r.true_ll = {-0.6, 0.01};
  EXPECT_TRUE(std::isnan(gap_closed(r, r.calibrated_ll)));
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
