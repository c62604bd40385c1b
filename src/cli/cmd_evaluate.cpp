// nfcal evaluate: test-set metrics of a flow or a calibrated model, as a table and as JSON.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/csv.hpp"
#include "nfcal/error.hpp"
#include "nfcal/evaluate.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace nfcal::cli {
namespace {

struct EvaluateCommandOptions {
  CommonOptions common;
  std::string model;
  std::string data;
  std::string json;  // "" none, "-" stdout, else a file
  std::string true_log_density;
  EvaluateOptions evaluation;
};

// One true log density per test row, from a file of one column (.npy of shape (n,) or (n, 1),
// or CSV); errors name the file.
std::vector<double> load_true_log_density(const std::string& path, std::size_t test_rows) {
  const Matrix<double> table = read_table(path);
  if (table.cols() != 1) {
    throw DataError(path + ": " + std::to_string(table.cols()) +
                    " columns, but a true log density has one value per row");
  }
  if (table.rows() != test_rows) {
    throw DataError(path + ": " + std::to_string(table.rows()) + " values for " +
                    std::to_string(test_rows) + " test rows");
  }
  std::vector<double> values(table.data(), table.data() + table.rows());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw DataError(path + ": row " + std::to_string(i) + " is not a finite log density");
    }
  }
  return values;
}

void run_evaluate(const EvaluateCommandOptions& options) {
  const Runtime runtime = apply_common_options(options.common);
  check_json_target(options.json);
  const std::string device = runtime.device.is_cuda() ? runtime.device.to_string() : "cpu";
  const AnyModel model = load_model(options.model, runtime.threads, device);
  const Matrix<float> test = load_rows(options.data, model.dim(), "test data");
  if (test.rows() == 1) {
    spdlog::warn("{}: one row, so the mean log-likelihood has no standard error", options.data);
  }
  EvaluateOptions evaluation = options.evaluation;
  evaluation.seed = options.common.seed;
  if (!options.true_log_density.empty()) {
    evaluation.true_log_density = load_true_log_density(options.true_log_density, test.rows());
  }

  log_configuration("evaluate",
                    {{"model", options.model},
                     {"kind", model.kind()},
                     {"data", options.data},
                     {"rows", std::to_string(test.rows())},
                     {"dim", std::to_string(model.dim())},
                     {"true_log_density", options.true_log_density},
                     {"acceptance_samples", std::to_string(options.evaluation.acceptance_samples)},
                     {"seed", std::to_string(options.common.seed)},
                     {"threads", std::to_string(runtime.threads)},
                     {"device", runtime.device.to_string()}});

  // The table goes to stdout, unless stdout carries the JSON; then it goes to stderr.
  const Evaluation e = evaluate(model, test, evaluation);
  std::fputs(e.to_table().c_str(), summary_stream(options.json));
  write_json_target(options.json, e.to_json());
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
  auto options = std::make_shared<EvaluateCommandOptions>();
  CLI::App* command =
      app.add_subcommand("evaluate", "test-set metrics of a flow or a calibrated model");
  command->add_option("--model", options->model, "a flow or calibrated model file")->required();
  command->add_option("--data", options->data, "test rows, .npy or .csv")->required();
  command->add_option("--json", options->json, "also write the metrics as JSON (- for stdout)");
  command->add_option("--true-log-density", options->true_log_density,
                      "the true log density of each test row (.npy or .csv, one column): adds "
                      "the truth's log-likelihood and the share of the gap closed");
  command
      ->add_option("--acceptance-samples", options->evaluation.acceptance_samples,
                   "accepted samples drawn to measure acceptance (0: skip)")
      ->capture_default_str();
  command
      ->add_option("--max-candidates", options->evaluation.max_candidates,
                   "candidate cap of that sampling run (0: the sampler's default)")
      ->capture_default_str();
  add_common_options(command, &options->common);
  command->callback([options] { run_evaluate(*options); });
}

}  // namespace nfcal::cli
