// Shared command plumbing: common options, logging, and early checks on paths.
#include "cli/common.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "nfcal/atomic_file.hpp"
#include "nfcal/csv.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"

namespace nfcal::cli {
namespace {

// The folder that holds `path` ("." for a bare file name).
std::string folder_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Logs go to stderr, so stdout carries only results.
void install_logger() {
  if (spdlog::get("nfcal")) return;
  auto logger = spdlog::stderr_color_mt("nfcal");
  logger->set_pattern("[%H:%M:%S %^%l%$] %v");
  spdlog::set_default_logger(logger);
}

// The number in `text`, or an explanation why there is none.
std::string read_number(const std::string& text, double* value) {
  char* end = nullptr;
  errno = 0;
  *value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE) {
    return "'" + text + "' is not a number";
  }
  return "";
}

// The folder holding the running executable, where the plotting script is installed.
std::string executable_folder() {
  std::string path(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  if (n <= 0) return ".";
  path.resize(static_cast<std::size_t>(n));
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// A check that the option is a number for which `holds` is true, else says `requirement`.
CLI::Validator number_check(bool (*holds)(double), const std::string& requirement,
                            const std::string& name) {
  return CLI::Validator(
      [holds, requirement](std::string& text) {
        double value = 0;
        const std::string why = read_number(text, &value);
        if (!why.empty()) return why;
        return holds(value) ? std::string() : requirement + ", got " + text;
      },
      name);
}

}  // namespace

const CLI::Validator kPositive =
    number_check([](double v) { return v > 0; }, "must be positive", "POSITIVE");
const CLI::Validator kNonNegative =
    number_check([](double v) { return v >= 0; }, "must not be negative", "NONNEGATIVE");
const CLI::Validator kCeiling = CLI::Validator(
    [](std::string& text) {
      try {
        CeilingChoice::parse(text);
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string();
    },
    "L|auto|none");

void add_classifier_input_options(CLI::App* command, CalibrationOptions* options) {
  ClassifierInput* input = &options->classifier_input;
  command
      ->add_option_function<std::string>(
          "--classifier-input",
          [input](const std::string& text) { *input = parse_classifier_input(text); },
          "what the classifier scores: data, or data+latent (each row with its base "
          "coordinates under the flow)")
      ->check(CLI::IsMember({"data", "data+latent"}))
      ->default_str(to_string(*input));
  bool* refit = &options->classifier.refit;
  command->add_flag_callback(
      "--no-refit", [refit] { *refit = false; },
      "keep the trees boosted without the held-out rows instead of boosting the chosen number "
      "again on every row");
}

void add_common_options(CLI::App* command, CommonOptions* options, bool with_seed) {
  command
      ->add_option("--device", options->device,
                   "where to compute: cpu, cuda, cuda:N, or auto (a GPU when there is one)")
      ->capture_default_str();
  command->add_option("--threads", options->threads, "CPU threads; 0 uses every core")
      ->check(CLI::Range(0, kMaxThreads))
      ->capture_default_str();
  if (with_seed) {
    command->add_option("--seed", options->seed, "random seed; equal seeds give equal results")
        ->capture_default_str();
  }
  command->add_flag("--quiet", options->quiet, "log warnings and errors only");
  command->add_flag("--verbose", options->verbose, "log debugging detail");
}

Runtime apply_common_options(const CommonOptions& options) {
  // Logging first, so everything after it can report.
  install_logger();
  if (options.quiet && options.verbose) {
    throw InvalidArgument("--quiet and --verbose cannot be used together");
  }
  spdlog::set_level(options.quiet     ? spdlog::level::warn
                    : options.verbose ? spdlog::level::debug
                                      : spdlog::level::info);

  Runtime runtime;
  set_num_threads(options.threads);
  runtime.threads = num_threads();
  runtime.device = Device::parse(options.device);
  return runtime;
}

void log_configuration(const std::string& command,
                       const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string line = "nfcal " + command + ":";
  for (const auto& [key, value] : fields) line += " " + key + "=" + value;
  spdlog::info("{}", line);
}

Matrix<float> load_rows(const std::string& path, int dim, const std::string& role,
                        std::size_t min_rows, const std::string& why) {
  Matrix<float> x = read_table_float(path);
  if (x.rows() == 0) throw DataError(path + ": no rows (" + role + ")");
  if (x.rows() < min_rows) {
    throw DataError(path + ": " + std::to_string(x.rows()) + (x.rows() == 1 ? " row" : " rows") +
                    " of " + role + "; at least " + std::to_string(min_rows) + " are needed " +
                    why);
  }
  if (dim > 0 && x.cols() != static_cast<std::size_t>(dim)) {
    throw DataError(path + ": " + std::to_string(x.cols()) +
                    (x.cols() == 1 ? " column" : " columns") + ", but the model has " +
                    std::to_string(dim));
  }
  check_rows(x, static_cast<int>(x.cols()), path);
  return x;
}

void check_output_path(const std::string& path) {
  // A folder where the file should go, or a folder that is missing, fails at once.
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    throw FileError("cannot write '" + path + "': it is a folder");
  }
  const std::string folder = folder_of(path);
  if (::stat(folder.c_str(), &info) != 0) {
    throw FileError("cannot write '" + path + "': folder '" + folder + "' does not exist");
  }
  if (!S_ISDIR(info.st_mode)) {
    throw FileError("cannot write '" + path + "': '" + folder + "' is not a folder");
  }

  // Creating (and removing) a probe file is the only reliable test of write permission.
  const std::string probe = path + ".probe-" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw FileError("cannot write '" + path + "': " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

void warn_about_constant_columns(const Matrix<float>& rows, const std::string& path) {
  if (rows.rows() < 2) return;
  std::vector<std::string> constant_columns;
  for (std::size_t d = 0; d < rows.cols(); ++d) {
    bool constant = true;
    for (std::size_t r = 1; r < rows.rows() && constant; ++r) constant = rows(r, d) == rows(0, d);
    if (constant) {
      constant_columns.push_back(std::to_string(d) + " (" + format_number(rows(0, d)) + ")");
    }
  }
  if (constant_columns.empty()) return;

  constexpr std::size_t kNamed = 5;
  std::string named;
  for (std::size_t i = 0; i < std::min(kNamed, constant_columns.size()); ++i) {
    named += (i == 0 ? "" : ", ") + constant_columns[i];
  }
  if (constant_columns.size() > kNamed) {
    named += " and " + std::to_string(constant_columns.size() - kNamed) + " more";
  }
  spdlog::warn(
      "{}: column{} {} hold{} the same value in every row; a flow cannot give a column the point "
      "mass it is, so log densities include an arbitrary term for it: drop such columns",
      path, constant_columns.size() == 1 ? "" : "s", named,
      constant_columns.size() == 1 ? "s" : "");
}

void check_rows_fit_in_memory(const std::string& what, std::size_t rows, std::size_t columns,
                              std::size_t bytes_per_value) {
  const double bytes = static_cast<double>(rows) * static_cast<double>(columns) *
                       static_cast<double>(bytes_per_value);
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  if (memory > 0 && bytes > memory) {
    constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
    throw InvalidArgument(fmt::format(
        "{}: {} rows of {} columns need {:.1f} GiB, more than this machine's {:.1f} GiB of memory",
        what, rows, columns, bytes / kGiB, memory / kGiB));
  }
}

void check_flow_rows_fit_in_memory(const CalibrationOptions& calibration, std::size_t data_rows,
                                   int dim) {
  const double flow_rows = std::ceil(calibration.flow_ratio * static_cast<double>(data_rows));
  const int features = classifier_feature_count(calibration.classifier_input, dim);
  check_rows_fit_in_memory("--flow-ratio " + format_number(calibration.flow_ratio) + " with " +
                               std::to_string(data_rows) + " data rows",
                           static_cast<std::size_t>(flow_rows), static_cast<std::size_t>(features),
                           2 * sizeof(float));
}

void check_table_extension(const std::string& path, const std::string& option) {
  if (!is_table_path(path)) {
    throw FileError(option + " '" + path + "': unsupported file type; use .npy or .csv");
  }
}

void make_folder(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error || !std::filesystem::is_directory(path)) {
    throw FileError("cannot create folder '" + path + "'" +
                    (error ? ": " + error.message() : std::string(": a file is in the way")));
  }
}

EpochCallback epoch_logger() {
  return [](const EpochReport& report) {
    spdlog::info("epoch={}/{} train_ll={:.4f} validation_ll={:.4f} seconds={:.2f}{}", report.epoch,
                 report.epochs, report.train_log_likelihood, report.validation_log_likelihood,
                 report.seconds, report.improved ? " best" : "");
  };
}

report::PlotOutcome draw_with_plot_script(const std::string& folder) {
  report::PlotOutcome outcome;
  const std::string script = report::find_plot_script(executable_folder());
  if (script.empty()) {
    outcome.reason =
        "the plotting script nfcal_plot_report.py is not beside the nfcal "
        "executable (set NFCAL_PLOT_SCRIPT to scripts/plot_report.py)";
    return outcome;
  }
  std::string why;
  const std::string python = report::find_python(&why);
  if (python.empty()) {
    outcome.reason = why;
    return outcome;
  }
  spdlog::info("drawing pictures with {} {}", python, script);
  outcome = report::make_plots(python, script, folder);
  if (!outcome.made && outcome.reason.empty()) outcome.reason = "the script drew nothing";
  return outcome;
}

void check_json_target(const std::string& target) {
  if (!target.empty() && target != "-") check_output_path(target);
}

std::FILE* summary_stream(const std::string& target) { return target == "-" ? stderr : stdout; }

void write_json_target(const std::string& target, const std::string& json) {
  if (target == "-") {
    std::printf("%s\n", json.c_str());
  } else if (!target.empty()) {
    write_file_atomically(target, json + "\n");
    std::printf("wrote %s\n", target.c_str());
  }
}

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

namespace {

std::vector<std::string>& recorded_arguments() {
  static std::vector<std::string> arguments;
  return arguments;
}

// A word as a POSIX shell reads it back: bare when it holds only safe characters, otherwise
// in single quotes, with each single quote closed, escaped and reopened.
std::string shell_quoted(const std::string& word) {
  const bool safe = !word.empty() && word.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789@%+=:,./_-") == std::string::npos;
  if (safe) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

void warn_about(const CalibrationReport& report) {
  for (const auto& [ceiling, gain] : report.ceiling_gains) {
    spdlog::debug("ceiling {}: held-out gain {:.5f} nats per row", format_number(ceiling), gain);
  }
  for (const std::string& warning : report.warnings()) spdlog::warn("{}", warning);
}

void record_invocation(int argc, const char* const* argv) {
  recorded_arguments().assign(argv + std::min(argc, 1), argv + argc);
}

std::string invocation() {
  std::string line = "nfcal";
  for (const std::string& word : recorded_arguments()) line += " " + shell_quoted(word);
  return line;
}

}  // namespace nfcal::cli
