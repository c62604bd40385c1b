// Option plumbing shared by every nfcal subcommand: the common options (--device, --threads,
// --seed, --quiet, --verbose), logging, the one-line configuration summary, and the checks on
// input and output paths that let a command fail before doing any long work.
//
// A command lives in src/cli/cmd_<name>.cpp as one function, add_<name>_command(CLI::App&),
// listed in commands.hpp and registered in main.cpp. It creates its subcommand, binds its
// options into a struct, and sets a callback that does the work; errors are thrown as
// nfcal::Error and reported by main().
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/device.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/train.hpp"

#include "report/report.hpp"

namespace nfcal::cli {

/// Option checks with plain messages: "--epochs: must be positive, got 0" instead of a range
/// up to the largest double.
extern const CLI::Validator kPositive;
extern const CLI::Validator kNonNegative;
/// A ceiling as CeilingChoice::parse reads it: a number of nats, auto or none.
extern const CLI::Validator kCeiling;

/// Adds --classifier-input (data or data+latent) and --no-refit to `command`.
void add_classifier_input_options(CLI::App* command, CalibrationOptions* options);

/// Options every command shares.
struct CommonOptions {
  std::string device = "auto";
  int threads = 0;  // 0: all cores
  std::uint64_t seed = 0;
  bool quiet = false;
  bool verbose = false;
};

/// What a command's common options resolve to.
struct Runtime {
  Device device;
  int threads = 0;  // the resolved count
};

/// Adds --device, --threads, --seed (when with_seed), --quiet and --verbose to `command`.
void add_common_options(CLI::App* command, CommonOptions* options, bool with_seed = true);

/// Sets the log level, the thread count and parses the device. Throws InvalidArgument naming
/// the option at fault (a CUDA device this build or machine lacks, a negative thread count).
Runtime apply_common_options(const CommonOptions& options);

/// Logs the resolved configuration of `command` once, as one line of key=value pairs.
void log_configuration(const std::string& command,
                       const std::vector<std::pair<std::string, std::string>>& fields);

/// Reads a table (.npy or .csv) as float32 rows and checks it: rows present, `dim` columns
/// (any number when dim is 0), every value finite. Messages name the file, and the row and
/// column of a NaN or Inf. `role` says what the file is for ("training data").
/// Fewer than `min_rows` rows is an error naming the file and what the rows are needed for.
Matrix<float> load_rows(const std::string& path, int dim, const std::string& role,
                        std::size_t min_rows = 1, const std::string& why = "");

/// Throws FileError naming `path` unless a file can be created there: its folder must exist
/// and accept new files, and `path` must not be a folder. Nothing is left behind.
void check_output_path(const std::string& path);

/// Logs a warning for each column of `rows` that holds one value in every row: a flow gives
/// such a column a narrow bump, not the point mass it is, so its log densities mean little.
void warn_about_constant_columns(const Matrix<float>& rows, const std::string& path);

/// Throws InvalidArgument starting with `what` (the option to blame) when `rows` rows of `columns`
/// values, each taking `bytes_per_value` bytes in all the copies held at once, would not fit in
/// this machine's memory, so a mistyped count fails at once instead of after long work or as a bare
/// allocation failure.
void check_rows_fit_in_memory(const std::string& what, std::size_t rows, std::size_t columns,
                              std::size_t bytes_per_value = sizeof(float));

/// check_rows_fit_in_memory() for the flow rows calibration draws against `data_rows` data
/// rows: flow_ratio of them per data row, each held as the flow's rows and as the classifier's
/// features at once.
void check_flow_rows_fit_in_memory(const CalibrationOptions& calibration, std::size_t data_rows,
                                   int dim);

/// Throws FileError unless `path` ends in .npy or .csv, naming the option.
void check_table_extension(const std::string& path, const std::string& option);

/// Creates folder `path` and its parents when missing. Throws FileError naming it otherwise.
void make_folder(const std::string& path);

/// The epoch callback for nfcal::fit: one log line per epoch.
EpochCallback epoch_logger();

/// A number in a short, stable text form for logs and summaries ("%.6g").
std::string format_number(double value);

/// Runs the plotting script (found beside the executable) with a Python that has matplotlib
/// on `folder`, which holds plot_spec.json and the files it names. Never throws: when there
/// is no script, no such Python or no picture, the outcome's reason says why.
report::PlotOutcome draw_with_plot_script(const std::string& folder);

/// The --json option of a command that prints a summary: "" writes no JSON, "-" writes it to
/// stdout (the summary then goes to stderr), anything else is a file written atomically.
/// check_json_target() checks that file's folder before any long work.
void check_json_target(const std::string& target);
/// Where the summary goes for this --json target: stderr when stdout carries the JSON.
std::FILE* summary_stream(const std::string& target);
/// Writes `json` to the target, with "wrote PATH" on stdout for a file.
void write_json_target(const std::string& target, const std::string& json);

/// Logs the calibration's warnings (CalibrationReport::warnings), and the held-out gain of
/// each ceiling the auto mode tried at debug level.
void warn_about(const CalibrationReport& report);

/// Keeps the program's arguments as typed, for reports that record how they were made.
void record_invocation(int argc, const char* const* argv);

/// The recorded arguments as one shell line, "nfcal" first, each word quoted where the shell
/// would need it; "nfcal" alone when nothing was recorded.
std::string invocation();

}  // namespace nfcal::cli
