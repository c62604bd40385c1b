// The report of one `nfcal run`: metrics.json, report.md and the pictures that
// scripts/plot_report.py draws with matplotlib from .npy files the run leaves in its folder.
//
// Nothing here trains or samples; the pipeline in src/cli/ fills RunResults and calls these
// functions. Pictures are optional: when no Python with matplotlib is found, or the script
// fails, the run still succeeds and report.md says which pictures were skipped and why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "nfcal/evaluate.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal::report {

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// The row statistics live in the library (nfcal/evaluate.hpp); the report uses them by name.
using nfcal::Estimate;
using nfcal::estimate_mean;
using nfcal::gap_share;

/// Per-pixel numbers of an image dataset in its original space (pixel values in [0, 256)).
struct PixelSpace {
  bool active = false;
  int pixels = 0;
  double lambda = 0;                                                // of the logit transform
  Estimate flow_nats, calibrated_nats, flow_bits, calibrated_bits;  // bits are per pixel
};

/// Everything a run measured, in nats unless said otherwise.
struct RunResults {
  std::string dataset;  // a built-in name or a file name
  std::string source;   // where the rows came from
  int dim = 0;
  std::size_t train_rows = 0, validation_rows = 0, test_rows = 0;
  std::uint64_t seed = 0;
  std::string command_line;
  std::vector<std::pair<std::string, std::string>> configuration;

  Estimate flow_ll, calibrated_ll, true_ll;  // test log-likelihoods; true_ll NaN if unknown
  Estimate gain;                             // calibrated minus flow, row by row
  // The flow calibrated by the exact log density ratio at the same ceiling (known densities
  // only): the most any classifier could reach.
  Estimate exact_ratio_ll;
  // The shares of the flow's gap to the truth that the calibrated model and the exact-ratio
  // reference close on the test rows (gap_share); NaN when the truth is unknown.
  Estimate gap_closed, exact_ratio_gap_closed;
  // The same on the training rows: how far the test numbers fall below them shows overfitting.
  Estimate flow_train_ll, calibrated_train_ll, true_train_ll;
  PixelSpace pixel_space;
  int epochs_run = 0, best_epoch = 0;
  int trees_trained = 0, trees_kept = 0;
  std::string classifier_input = "data";  // what the classifier scored
  bool refit = false;                     // the kept trees were boosted again on all rows
  double heldout_gain = kMissing, heldout_gain_se = kMissing;
  double auc = kMissing, log_loss = kMissing;
  double log_z = kMissing, log_z_se = kMissing, ess = kMissing;
  double ceiling = kMissing;  // +infinity: no ceiling
  double acceptance_predicted = kMissing, acceptance_measured = kMissing;
  std::size_t samples_drawn = 0, candidates = 0;
  std::string sampling_failure;       // the sampler's message when it stopped at its cap
  std::vector<std::string> warnings;  // the calibration's (CalibrationReport::warnings)
  std::vector<std::pair<std::string, double>> seconds;  // (step, wall seconds) in order
};

/// What the plotting step did.
struct PlotOutcome {
  bool made = false;
  std::vector<std::string> files;  // PNG names inside the run folder
  std::string reason;              // why pictures were skipped or are incomplete
};

/// metrics.json: every number of `results` (NaN and infinity as null) and the plot outcome.
std::string metrics_json(const RunResults& results, const PlotOutcome& plots);

/// report.md: the configuration, the table of flow against calibrated model (and the true
/// density where known), the classifier and sampler numbers, timings, and the pictures.
std::string report_markdown(const RunResults& results, const PlotOutcome& plots);

/// A square-cell grid of size x size points over a rectangle, for density pictures.
struct Grid {
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  int size = 0;
  /// The points (size * size, 2), row-major with y varying slowest (image rows).
  Matrix<float> points() const;
};

/// A grid covering the central 99.8% of `rows`' first two columns in each axis, widened by
/// `margin` of its span on each side. Throws InvalidArgument for fewer than 2 columns, no rows,
/// or size < 2.
Grid grid_around(const Matrix<float>& rows, int size, double margin = 0.1);

/// The plotting script: $NFCAL_PLOT_SCRIPT, else nfcal_plot_report.py beside the executable
/// (the build copies scripts/plot_report.py there and installs it there) or in ../share/nfcal.
/// Empty when none exists.
std::string find_plot_script(const std::string& executable_dir);

/// A Python interpreter that imports matplotlib and numpy: $NFCAL_PYTHON, /usr/bin/python3,
/// then python3 on PATH. Empty when none does; `why` then says what was tried.
std::string find_python(std::string* why);

/// Runs `script` with `python` on the run folder (which holds plot_spec.json and the .npy
/// files it names). Never throws: failures come back in the outcome's reason.
PlotOutcome make_plots(const std::string& python, const std::string& script,
                       const std::string& folder);

}  // namespace nfcal::report
