// nfcal evaluate: test-set metrics of a flow or a calibrated model, as a table and as JSON.
#include <cstdio>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "nfcal/atomic_file.hpp"
#include "nfcal/calibrated_flow.hpp"
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
  EvaluateOptions evaluation;
};

void run_evaluate(const EvaluateCommandOptions& options) {
  const Runtime runtime = apply_common_options(options.common);
  const bool json_to_stdout = options.json == "-";
  if (!options.json.empty() && !json_to_stdout) check_output_path(options.json);
  const std::string device = runtime.device.is_cuda() ? runtime.device.to_string() : "cpu";
  const AnyModel model = load_model(options.model, runtime.threads, device);
  const Matrix<float> test = load_rows(options.data, model.dim(), "test data");
  if (test.rows() == 1) {
    spdlog::warn("{}: one row, so the mean log-likelihood has no standard error", options.data);
  }

  log_configuration("evaluate",
                    {{"model", options.model},
                     {"kind", model.kind()},
                     {"data", options.data},
                     {"rows", std::to_string(test.rows())},
                     {"dim", std::to_string(model.dim())},
                     {"acceptance_samples", std::to_string(options.evaluation.acceptance_samples)},
                     {"seed", std::to_string(options.common.seed)},
                     {"threads", std::to_string(runtime.threads)},
                     {"device", runtime.device.to_string()}});

  // The table goes to stdout, unless stdout carries the JSON; then it goes to stderr.
  EvaluateOptions evaluation = options.evaluation;
  evaluation.seed = options.common.seed;
  const Evaluation e = evaluate(model, test, evaluation);
  std::fputs(e.to_table().c_str(), json_to_stdout ? stderr : stdout);
  if (json_to_stdout) {
    std::printf("%s\n", e.to_json().c_str());
  } else if (!options.json.empty()) {
    write_file_atomically(options.json, e.to_json() + "\n");
    std::printf("wrote %s\n", options.json.c_str());
  }
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
  auto options = std::make_shared<EvaluateCommandOptions>();
  CLI::App* command =
      app.add_subcommand("evaluate", "test-set metrics of a flow or a calibrated model");
  command->add_option("--model", options->model, "a flow or calibrated model file")->required();
  command->add_option("--data", options->data, "test rows, .npy or .csv")->required();
  command->add_option("--json", options->json, "also write the metrics as JSON (- for stdout)");
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
