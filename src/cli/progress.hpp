// A one-line progress bar on stderr for long work (training epochs, sampling rounds). It draws
// only when stderr is a terminal and logging is not quiet, so pipes, files and CI logs get the
// parseable log lines instead and never carry carriage returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "nfcal/train.hpp"
#include "nfcal/xgboost_classifier.hpp"

namespace nfcal::cli {

/// True when progress bars are drawn: stderr is a terminal and the log level shows info.
bool progress_bars_enabled();

class ProgressBar {
 public:
  /// A bar named `label` counting to `total` steps; draws nothing when bars are disabled.
  ProgressBar(std::string label, std::size_t total);
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  /// Ends the line if the bar was drawn.
  ~ProgressBar();

  /// Whether this bar draws (otherwise callers log one line per step instead).
  bool enabled() const { return enabled_; }
  /// Moves the bar to `done` steps, with a short status (e.g. the last loss) after it.
  void update(std::size_t done, const std::string& status = "");
  /// Changes the number of steps the bar counts to (a phase of unforeseen length).
  void set_total(std::size_t total) { total_ = total; }
  /// Ends the bar's line; later updates are ignored.
  void finish();

 private:
  std::string label_;
  std::size_t total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

/// Progress of flow training: the bar moves by epochs; without a bar, one log line per epoch.
EpochCallback training_progress(ProgressBar* bar);

/// Progress of the classifier's boosting rounds, with the held-out gain; without a bar, one
/// debug log line per round (shown with --verbose).
RoundCallback classifier_progress(ProgressBar* bar);

/// Progress of rejection sampling by accepted samples; without a bar, one debug log line per
/// round (shown with --verbose).
std::function<void(std::size_t, std::size_t)> sampling_progress(ProgressBar* bar);

}  // namespace nfcal::cli
