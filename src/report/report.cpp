// metrics.json, report.md, density grids, and running the plotting script.
#include "report/report.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nfcal/error.hpp"

namespace nfcal::report {
namespace {

using nlohmann::json;

bool file_exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

// A number for JSON: NaN and infinities are null.
json number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json to_json(const Estimate& e) {
  return {{"mean", number(e.mean)}, {"standard_error", number(e.se)}};
}

// An estimate that may not apply (no known density): null then.
json optional_json(const Estimate& e) { return std::isnan(e.mean) ? json(nullptr) : to_json(e); }

// A table cell: "-" for a missing number, else the value with `digits` decimals.
std::string cell(double value, int digits = 4) {
  if (std::isnan(value)) return "-";
  if (std::isinf(value)) return value > 0 ? "none (+inf)" : "-inf";
  return fmt::format("{:.{}f}", value, digits);
}

std::string cell(const Estimate& e, int digits = 4) {
  if (std::isnan(e.mean)) return "- | -";
  return cell(e.mean, digits) + " | " + cell(e.se, digits);
}

std::string percent(double rate) {
  return std::isfinite(rate) ? fmt::format("{:.1f}%", 100.0 * rate) : "-";
}

std::string percent(const Estimate& share) {
  if (!std::isfinite(share.se)) return percent(share.mean);
  return percent(share.mean) + " +- " + percent(share.se);
}

// Quotes one argument for /bin/sh.
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs a shell command, capturing stdout and stderr together; returns the exit status.
int run_capture(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buffer{};
  std::size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    output->append(buffer.data(), got);
  }
  const int raw = ::pclose(pipe);
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

// The last non-empty line of a process's output, for a one-line reason.
std::string last_line(const std::string& text) {
  std::istringstream lines(text);
  std::string last;
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  return last;
}

// The model rows of the main table.
void write_likelihood_table(const RunResults& r, std::ostringstream& md) {
  md << "| model | test log-likelihood (nats) | standard error | training rows |\n"
     << "|---|---:|---:|---:|\n";
  md << "| flow (MAF) | " << cell(r.flow_ll) << " | " << cell(r.flow_train_ll.mean) << " |\n";
  md << "| calibrated (flow + classifier) | " << cell(r.calibrated_ll) << " | "
     << cell(r.calibrated_train_ll.mean) << " |\n";
  md << "| gain, calibrated - flow | " << cell(r.gain) << " | |\n";
  if (!std::isnan(r.exact_ratio_ll.mean)) {
    md << "| flow calibrated by the exact density ratio, same ceiling | " << cell(r.exact_ratio_ll)
       << " | |\n";
  }
  if (!std::isnan(r.true_ll.mean)) {
    md << "| true density | " << cell(r.true_ll) << " | " << cell(r.true_train_ll.mean) << " |\n";
  }
  md << "\n";
  if (!std::isnan(r.gap_closed.mean)) {
    md << "Calibration closed " << percent(r.gap_closed)
       << " of the flow's gap to the true density";
    if (!std::isnan(r.exact_ratio_gap_closed.mean)) {
      md << "; the exact density ratio, clipped at the same ceiling, closes "
         << percent(r.exact_ratio_gap_closed)
         << ", the most any classifier can reach with this flow and ceiling";
    }
    md << " (standard errors over the test rows).\n\n";
  }
  if (r.pixel_space.active) {
    const PixelSpace& p = r.pixel_space;
    md << "In the original pixel space (values in [0, 256), " << p.pixels
       << " pixels, logit transform with lambda = " << p.lambda << "):\n\n"
       << "| model | nats per image | standard error | bits per pixel | standard error |\n"
       << "|---|---:|---:|---:|---:|\n"
       << "| flow | " << cell(p.flow_nats, 2) << " | " << cell(p.flow_bits) << " |\n"
       << "| calibrated | " << cell(p.calibrated_nats, 2) << " | " << cell(p.calibrated_bits)
       << " |\n\n";
  }
}

// The classifier and sampler numbers.
void write_calibration_table(const RunResults& r, std::ostringstream& md) {
  md << "| quantity | value |\n|---|---:|\n"
     << "| classifier AUC, test rows vs flow samples | " << cell(r.auc) << " |\n"
     << "| classifier log-loss | " << cell(r.log_loss) << " |\n"
     << "| classifier input | " << r.classifier_input << " |\n"
     << "| trees kept / trained | " << r.trees_kept << " / " << r.trees_trained
     << (r.refit ? ", refit on all rows" : "") << " |\n"
     << "| held-out gain (nats per row) | " << cell(r.heldout_gain) << " +- "
     << cell(r.heldout_gain_se) << " |\n"
     << "| log Z | " << cell(r.log_z) << " +- " << cell(r.log_z_se) << " |\n"
     << "| ceiling L (nats) | " << cell(r.ceiling) << " |\n"
     << "| acceptance, predicted (Z / exp(L)) | " << percent(r.acceptance_predicted) << " |\n"
     << "| acceptance, measured | " << percent(r.acceptance_measured) << " (" << r.samples_drawn
     << " of " << r.candidates << " candidates) |\n"
     << "| effective sample size of exp(margin) | " << cell(r.ess, 1) << " |\n\n";
  for (const std::string& warning : r.warnings) md << "**Warning: " << warning << ".**\n\n";
  if (!r.sampling_failure.empty()) {
    md << "The calibrated model's samples are missing: " << r.sampling_failure
       << ". Its density and the numbers above stand; a lower `--ceiling` (or a "
          "`--target-acceptance`) raises the rate at which the sampler accepts.\n\n";
  }
}

}  // namespace

std::string metrics_json(const RunResults& r, const PlotOutcome& plots) {
  // The numbers people compare first sit at the top level.
  json j = {{"dataset", r.dataset},
            {"source", r.source},
            {"dim", r.dim},
            {"train_rows", r.train_rows},
            {"validation_rows", r.validation_rows},
            {"test_rows", r.test_rows},
            {"seed", r.seed},
            {"test_log_likelihood", to_json(r.flow_ll)},
            {"calibrated_test_log_likelihood", to_json(r.calibrated_ll)},
            {"calibration_gain", to_json(r.gain)},
            {"true_test_log_likelihood", optional_json(r.true_ll)},
            {"exact_ratio_test_log_likelihood", optional_json(r.exact_ratio_ll)},
            {"gap_closed", optional_json(r.gap_closed)},
            {"exact_ratio_gap_closed", optional_json(r.exact_ratio_gap_closed)}};
  j["train_log_likelihood"] = {{"flow", to_json(r.flow_train_ll)},
                               {"calibrated", to_json(r.calibrated_train_ll)},
                               {"true", optional_json(r.true_train_ll)}};

  // Training, the classifier and the sampler.
  j["flow"] = {{"epochs_run", r.epochs_run}, {"best_epoch", r.best_epoch}};
  j["classifier"] = {{"auc", number(r.auc)},
                     {"log_loss", number(r.log_loss)},
                     {"trees_trained", r.trees_trained},
                     {"trees_kept", r.trees_kept},
                     {"input", r.classifier_input},
                     {"refit", r.refit},
                     {"heldout_gain", number(r.heldout_gain)},
                     {"heldout_gain_se", number(r.heldout_gain_se)},
                     {"improved", r.heldout_gain > 0}};
  j["warnings"] = r.warnings;
  j["calibrated_model"] = {
      {"log_z", number(r.log_z)},
      {"log_z_se", number(r.log_z_se)},
      {"ess", number(r.ess)},
      {"ceiling", number(r.ceiling)},
      {"acceptance_predicted", number(r.acceptance_predicted)},
      {"acceptance_measured", number(r.acceptance_measured)},
      {"samples_drawn", r.samples_drawn},
      {"candidates", r.candidates},
      {"sampling_failure", r.sampling_failure.empty() ? json(nullptr) : json(r.sampling_failure)}};
  if (r.pixel_space.active) {
    const PixelSpace& p = r.pixel_space;
    j["pixel_space"] = {{"pixels", p.pixels},
                        {"logit_lambda", p.lambda},
                        {"flow_nats", to_json(p.flow_nats)},
                        {"calibrated_nats", to_json(p.calibrated_nats)},
                        {"flow_bits_per_pixel", to_json(p.flow_bits)},
                        {"calibrated_bits_per_pixel", to_json(p.calibrated_bits)}};
  }

  // How the run was made and where its time went.
  json seconds = json::object();
  double total = 0;
  for (const auto& [step, value] : r.seconds) {
    seconds[step] = value;
    total += value;
  }
  seconds["total"] = total;
  j["seconds"] = seconds;
  json configuration = json::object();
  for (const auto& [key, value] : r.configuration) configuration[key] = value;
  j["configuration"] = configuration;
  j["command_line"] = r.command_line;
  j["plots"] = {{"made", plots.made}, {"files", plots.files}, {"reason", plots.reason}};
  return j.dump(2) + "\n";
}

std::string report_markdown(const RunResults& r, const PlotOutcome& plots) {
  std::ostringstream md;
  md << "# nfcal run: " << r.dataset << "\n\n"
     << "Data: " << r.source << "; " << r.dim << " dimensions, " << r.train_rows
     << " training rows, " << r.test_rows << " test rows; seed " << r.seed << ".\n\n";
  if (!r.command_line.empty()) md << "    " << r.command_line << "\n\n";

  md << "## Test log-likelihood\n\n";
  write_likelihood_table(r, md);
  md << "## Classifier and sampler\n\n";
  write_calibration_table(r, md);

  md << "## Pictures\n\n";
  for (const std::string& file : plots.files) md << "![" << file << "](" << file << ")\n\n";
  if (!plots.made) md << "Pictures were skipped: " << plots.reason << "\n\n";
  if (plots.made && !plots.reason.empty()) md << "Note: " << plots.reason << "\n\n";

  md << "## Configuration\n\n| setting | value |\n|---|---|\n";
  for (const auto& [key, value] : r.configuration) md << "| " << key << " | " << value << " |\n";
  md << "\n## Time\n\n| step | seconds |\n|---|---:|\n";
  double total = 0;
  for (const auto& [step, value] : r.seconds) {
    md << "| " << step << " | " << cell(value, 1) << " |\n";
    total += value;
  }
  md << "| total | " << cell(total, 1) << " |\n";
  return md.str();
}

Matrix<float> Grid::points() const {
  Matrix<float> p(static_cast<std::size_t>(size) * size, 2);
  for (int i = 0; i < size; ++i) {
    const double y = y_min + (y_max - y_min) * i / (size - 1);
    for (int k = 0; k < size; ++k) {
      const std::size_t r = static_cast<std::size_t>(i) * size + k;
      p(r, 0) = static_cast<float>(x_min + (x_max - x_min) * k / (size - 1));
      p(r, 1) = static_cast<float>(y);
    }
  }
  return p;
}

Grid grid_around(const Matrix<float>& rows, int size, double margin) {
  if (rows.rows() == 0 || rows.cols() < 2 || size < 2) {
    throw InvalidArgument("grid_around: needs rows with two columns and a size of at least 2");
  }

  // Robust bounds per axis: quantiles 0.001 and 0.999, so one outlier cannot shrink the picture.
  double bounds[2][2];
  for (int axis = 0; axis < 2; ++axis) {
    std::vector<float> column(rows.rows());
    for (std::size_t i = 0; i < rows.rows(); ++i) column[i] = rows(i, axis);
    std::sort(column.begin(), column.end());
    const std::size_t last = column.size() - 1;
    const double lo = column[static_cast<std::size_t>(0.001 * last)];
    const double hi = column[last - static_cast<std::size_t>(0.001 * last)];
    const double span = std::max(hi - lo, 1e-6);
    bounds[axis][0] = lo - margin * span;
    bounds[axis][1] = hi + margin * span;
  }
  return Grid{bounds[0][0], bounds[0][1], bounds[1][0], bounds[1][1], size};
}

std::string find_plot_script(const std::string& executable_dir) {
  if (const char* env = std::getenv("NFCAL_PLOT_SCRIPT"); env != nullptr && *env != '\0') {
    return file_exists(env) ? env : "";
  }
  const std::vector<std::string> candidates = {
      executable_dir + "/nfcal_plot_report.py",
      executable_dir + "/../share/nfcal/nfcal_plot_report.py",
  };
  for (const std::string& path : candidates) {
    if (file_exists(path)) return path;
  }
  return "";
}

std::string find_python(std::string* why) {
  // The first interpreter that imports both plotting dependencies wins.
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("NFCAL_PYTHON"); env != nullptr && *env != '\0') {
    candidates.push_back(env);
  } else {
    candidates = {"/usr/bin/python3", "python3"};
  }
  std::string tried;
  for (const std::string& python : candidates) {
    std::string output;
    const int status = run_capture(shell_quote(python) + " -c 'import matplotlib, numpy'", &output);
    if (status == 0) return python;
    tried += (tried.empty() ? "" : "; ") + python + ": " +
             (status == 127 ? std::string("not found") : last_line(output));
  }
  if (why != nullptr) {
    *why = "no Python with matplotlib and numpy (" + tried +
           "); install python3-matplotlib or set NFCAL_PYTHON";
  }
  return "";
}

PlotOutcome make_plots(const std::string& python, const std::string& script,
                       const std::string& folder) {
  // The script prints one "wrote NAME" line per picture and exits non-zero on failure.
  PlotOutcome outcome;
  std::string output;
  const int status = run_capture(
      shell_quote(python) + " " + shell_quote(script) + " " + shell_quote(folder), &output);
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("wrote ", 0) == 0) outcome.files.push_back(line.substr(6));
  }
  outcome.made = !outcome.files.empty();
  if (status != 0) {
    outcome.reason = "the plotting script " + script + " failed (status " + std::to_string(status) +
                     "): " + last_line(output);
  }
  return outcome;
}

}  // namespace nfcal::report
