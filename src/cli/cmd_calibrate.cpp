// nfcal calibrate: train an XGBoost classifier against a saved flow and save the calibrated
// model (flow, classifier, ceiling, log Z) as one bundle file.
#include <cstdio>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/error.hpp"
#include "nfcal/model_file.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress.hpp"

namespace nfcal::cli {
namespace {

struct CalibrateCommandOptions {
  CommonOptions common;
  std::string flow;
  std::string data;
  std::string validation;  // "" : a split of --data
  std::string out;
  std::string json;  // "" none, "-" stdout, else a file
  std::string ceiling = "auto";
  double target_acceptance = 0;  // 0: not given
  CalibrationOptions calibration;
};

// The ceiling mode from --ceiling and --target-acceptance (they exclude each other).
CeilingChoice ceiling_choice(const CalibrateCommandOptions& options) {
  if (options.target_acceptance > 0) {
    return CeilingChoice::target_acceptance(options.target_acceptance);
  }
  return CeilingChoice::parse(options.ceiling);
}

void run_calibrate(const CalibrateCommandOptions& options) {
  const Runtime runtime = apply_common_options(options.common);

  // Inputs and the output paths are checked before any long work.
  check_output_path(options.out);
  check_json_target(options.json);
  const Maf flow = load_flow(options.flow);
  // The classifier holds at least one row out and trains on the rest.
  const bool split = options.validation.empty();
  const Matrix<float> data = load_rows(options.data, flow.dim(), "calibration data", split ? 2 : 1,
                                       "to hold rows out for choosing the trees");
  const Matrix<float> validation =
      split ? Matrix<float>() : load_rows(options.validation, flow.dim(), "validation data");
  CalibrationOptions calibration = options.calibration;
  calibration.ceiling = ceiling_choice(options);
  calibration.seed = options.common.seed;
  calibration.classifier.seed = options.common.seed;
  calibration.classifier.threads = runtime.threads;
  calibration.classifier.device = runtime.device.is_cuda() ? runtime.device.to_string() : "cpu";
  calibration.device = runtime.device;
  calibration.validate();
  check_flow_rows_fit_in_memory(calibration, data.rows(), flow.dim());

  log_configuration(
      "calibrate",
      {{"flow", options.flow},
       {"data", options.data},
       {"rows", std::to_string(data.rows())},
       {"validation", split ? "split" : options.validation},
       {"dim", std::to_string(flow.dim())},
       {"out", options.out},
       {"trees", std::to_string(calibration.classifier.trees)},
       {"max_depth", std::to_string(calibration.classifier.max_depth)},
       {"learning_rate", format_number(calibration.classifier.learning_rate)},
       {"early_stopping_rounds", std::to_string(calibration.classifier.early_stopping_rounds)},
       {"flow_ratio", format_number(calibration.flow_ratio)},
       {"classifier_input", to_string(calibration.classifier_input)},
       {"refit", calibration.classifier.refit ? "true" : "false"},
       {"ceiling", calibration.ceiling.to_string()},
       {"log_z_samples", std::to_string(calibration.resolved_log_z_samples())},
       {"seed", std::to_string(calibration.seed)},
       {"threads", std::to_string(runtime.threads)},
       {"device", runtime.device.to_string()}});

  // Calibrate, report, and save the bundle.
  CalibrationReport report;
  const CalibratedFlow model = [&] {
    ProgressBar bar("classifier", static_cast<std::size_t>(calibration.classifier.trees));
    calibration.on_classifier_round = classifier_progress(&bar);
    return calibrate(flow, data, calibration, &report, split ? nullptr : &validation);
  }();
  warn_about(report);
  model.save(options.out);

  // The summary goes to stdout, unless stdout carries the JSON; then it goes to stderr.
  std::FILE* text = summary_stream(options.json);
  std::fputs(report.summary().c_str(), text);
  std::fprintf(text, "wrote %s\n", options.out.c_str());
  write_json_target(options.json, report.to_json());
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto options = std::make_shared<CalibrateCommandOptions>();
  CalibrationOptions& c = options->calibration;
  CLI::App* command =
      app.add_subcommand("calibrate", "calibrate a flow with a classifier of data vs samples");

  // Files.
  command->add_option("--flow", options->flow, "a flow model file written by nfcal fit")
      ->required();
  command->add_option("--data", options->data, "training rows, .npy or .csv")->required();
  CLI::Option* validation = command->add_option(
      "--validation", options->validation,
      "rows held out for choosing the trees and the ceiling (default: a split of --data)");
  command->add_option("--out", options->out, "the calibrated model file to write")->required();
  command->add_option("--json", options->json,
                      "also write what calibration did as JSON (- for stdout)");

  // The classifier.
  command->add_option("--trees", c.classifier.trees, "most boosting rounds")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--max-depth", c.classifier.max_depth, "depth of each tree")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  command->add_option("--learning-rate", c.classifier.learning_rate, "shrinkage per tree")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  command->add_option("--subsample", c.classifier.subsample, "row fraction per tree")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  command->add_option("--colsample", c.classifier.colsample, "column fraction per tree")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  command
      ->add_option("--parallel-trees", c.classifier.parallel_trees,
                   "trees averaged per round, each on its own subsample (a boosted forest)")
      ->check(kPositive)
      ->capture_default_str();
  command
      ->add_option("--min-child-weight", c.classifier.min_child_weight,
                   "least Hessian weight in a leaf")
      ->check(kNonNegative)
      ->capture_default_str();
  command->add_option("--lambda", c.classifier.lambda, "L2 regularization of leaf weights")
      ->check(kNonNegative)
      ->capture_default_str();
  command->add_option("--alpha", c.classifier.alpha, "L1 regularization of leaf weights")
      ->check(kNonNegative)
      ->capture_default_str();
  command
      ->add_option("--early-stopping-rounds", c.classifier.early_stopping_rounds,
                   "rounds without held-out gain before stopping (0: keep all)")
      ->check(kNonNegative)
      ->capture_default_str();
  command
      ->add_option("--validation-fraction", c.classifier.validation_fraction,
                   "share of rows held out for tree and ceiling selection")
      ->check(CLI::Range(0.01, 0.9))
      ->capture_default_str()
      ->excludes(validation);
  command->add_option("--flow-ratio", c.flow_ratio, "flow samples per data row")
      ->check(kPositive)
      ->capture_default_str();
  add_classifier_input_options(command, &c);

  // The calibrated model.
  CLI::Option* ceiling = command
                             ->add_option("--ceiling", options->ceiling,
                                          "margin ceiling L in nats, auto (best held-out), or none")
                             ->check(kCeiling)
                             ->capture_default_str();
  command
      ->add_option("--target-acceptance", options->target_acceptance,
                   "choose L so that rejection sampling accepts this share")
      ->check(CLI::Range(1e-6, 1.0))
      ->excludes(ceiling);
  command
      ->add_option("--log-z-samples", c.log_z_samples,
                   "fresh flow samples for log Z (0: 100000 on the CPU, 1000000 on a GPU)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  add_common_options(command, &options->common);

  command->callback([options] { run_calibrate(*options); });
}

}  // namespace nfcal::cli
