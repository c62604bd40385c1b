// `nfcal run` and `nfcal demo`: one command from data to a calibrated model, samples and a
// report. The pipeline fits a flow, calibrates it, evaluates both on test rows, samples both,
// and writes models, samples, metrics.json, report.md and pictures into one folder.
#pragma once

#include <cstddef>
#include <string>

#include <CLI/CLI.hpp>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/train.hpp"

#include "cli/common.hpp"

namespace nfcal::cli {

/// Every option of `run`; `demo` uses the same set without the file options.
struct RunOptions {
  CommonOptions common;
  std::string command = "run";  // the name logs and the report use

  // Data.
  std::string data;        // a .npy/.csv file of rows
  std::string dataset;     // or a dataset name (see `nfcal datasets`)
  std::string test;        // test rows; default: a seeded split of the data
  std::string validation;  // validation rows for early stopping; default: a split
  std::string out;
  long long train_size = 0;    // 0: the dataset's default (built-in: 8000; files: all)
  long long test_size = 0;     // 0: the dataset's default (built-in: 20000)
  double test_fraction = 0.2;  // of --data when no --test is given
  std::string data_dir;        // where installable datasets are read from

  // The flow.
  MafConfig maf;
  TrainConfig train;
  std::string activation = to_string(MafConfig{}.activation);

  // The classifier and the calibrated model.
  CalibrationOptions calibration;
  std::string ceiling = "auto";
  double target_acceptance = 0;

  // The report.
  long long samples = 0;           // per model; 0: as many as test rows, at most 5000
  std::size_t max_candidates = 0;  // the calibrated sampler's cap; 0: its default
  int grid = 200;                  // density grid points per axis (2-D data)
  bool no_plots = false;
};

/// RunOptions with the defaults `run` and `demo` start from.
RunOptions default_run_options();

/// Adds the options of `run` to `command`; with_files false leaves out --data, --test and
/// --validation (for `demo`, which uses built-in data only).
void add_run_options(CLI::App* command, RunOptions* options, bool with_files);

/// Runs the whole pipeline. Throws nfcal::Error naming the file or option at fault; checks
/// every input and the output folder before any long work.
void run_pipeline(const RunOptions& options);

}  // namespace nfcal::cli
