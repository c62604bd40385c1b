// The run pipeline: data, flow, calibration, evaluation, samples, report. Each step is timed
// and logged; training shows a progress bar on a terminal and one log line per epoch otherwise.
#include "cli/run_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "nfcal/atomic_file.hpp"
#include "nfcal/compute.hpp"
#include "nfcal/error.hpp"
#include "nfcal/evaluate.hpp"
#include "nfcal/image_data.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/npy.hpp"
#include "nfcal/rejection_sampler.hpp"

#include "cli/progress.hpp"
#include "cli/run_data.hpp"
#include "report/report.hpp"

namespace nfcal::cli {
namespace {

using Clock = std::chrono::steady_clock;
using report::Estimate;

constexpr std::size_t kMaxReportSamples = 5000;
constexpr std::size_t kImagesInGrid = 64;
constexpr std::size_t kSampleChunk = 1024;
// The exact-ratio reference runs on the CPU flow even on a GPU, so its log Z takes no more
// than the CPU's default count of flow samples.
constexpr std::size_t kMaxExactRatioSamples = 100000;
constexpr std::uint64_t kFlowSampleSeedOffset = 101;   // the report's flow samples
constexpr std::uint64_t kModelSampleSeedOffset = 202;  // the report's calibrated samples
constexpr std::uint64_t kExactRatioSeedOffset = 303;   // log Z of the exact-ratio reference

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Row-by-row difference b - a.
std::vector<double> difference(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];
  return d;
}

std::vector<double> plus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> s(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) s[i] = a[i] + b[i];
  return s;
}

// Flow samples in chunks keyed by row, so the result equals one big call; the bar moves.
Matrix<float> sample_flow(const Maf& flow, std::size_t n, std::uint64_t seed,
                          const Device& device) {
  Matrix<float> out(n, static_cast<std::size_t>(flow.dim()));
  ProgressBar bar("flow samples", n);
  for (std::size_t first = 0; first < n; first += kSampleChunk) {
    const std::size_t count = std::min(kSampleChunk, n - first);
    const Matrix<float> part = sample(flow, count, seed, device, first);
    std::copy(part.data(), part.data() + part.size(), out.row(first));
    bar.update(first + count);
  }
  return out;
}

// The configuration as (key, value) pairs, logged once and repeated in the report.
std::vector<std::pair<std::string, std::string>> configuration(
    const RunOptions& o, const RunData& data, const MafConfig& maf, const TrainConfig& train,
    const CalibrationOptions& calibration, const Runtime& runtime, std::size_t samples) {
  return {{"data", data.name},
          {"out", o.out},
          {"train_rows", std::to_string(data.train.rows())},
          {"validation_rows",
           data.validation.rows() > 0 ? std::to_string(data.validation.rows()) : "split"},
          {"test_rows", std::to_string(data.test.rows())},
          {"dim", std::to_string(maf.dim)},
          {"layers", std::to_string(maf.layers)},
          {"hidden", std::to_string(maf.hidden)},
          {"hidden_layers", std::to_string(maf.hidden_layers)},
          {"activation", to_string(maf.activation)},
          {"batch_norm", maf.batch_norm ? "true" : "false"},
          {"epochs", std::to_string(train.epochs)},
          {"batch_size", std::to_string(train.batch_size)},
          {"learning_rate", format_number(train.learning_rate)},
          {"clip_norm", format_number(train.clip_norm)},
          {"patience", std::to_string(train.patience)},
          {"trees", std::to_string(calibration.classifier.trees)},
          {"max_depth", std::to_string(calibration.classifier.max_depth)},
          {"classifier_learning_rate", format_number(calibration.classifier.learning_rate)},
          {"subsample", format_number(calibration.classifier.subsample)},
          {"parallel_trees", std::to_string(calibration.classifier.parallel_trees)},
          {"flow_ratio", format_number(calibration.flow_ratio)},
          {"classifier_input", to_string(calibration.classifier_input)},
          {"refit", calibration.classifier.refit ? "true" : "false"},
          {"ceiling", calibration.ceiling.to_string()},
          {"log_z_samples", std::to_string(calibration.resolved_log_z_samples())},
          {"samples", std::to_string(samples)},
          {"seed", std::to_string(o.common.seed)},
          {"threads", std::to_string(runtime.threads)},
          {"device", runtime.device.to_string()}};
}

// What the pictures need, written beside them: the spec and the .npy files it names.
struct PlotInputs {
  nlohmann::json spec;
};

// 2-D data: densities of the flow, the calibrated model and (when known) the truth on a grid.
void write_density_grids(const RunData& data, const CalibratedFlow& model,
                         const std::string& folder, int size, nlohmann::json* spec) {
  const report::Grid grid = report::grid_around(data.test, size);
  const Matrix<float> points = grid.points();
  const auto n = static_cast<std::size_t>(size);
  write_npy(folder + "density_flow.npy", Matrix<float>(n, n, model.flow().log_prob(points)));
  write_npy(folder + "density_calibrated.npy", Matrix<float>(n, n, model.log_prob(points)));
  (*spec)["grid"] = {{"extent", {grid.x_min, grid.x_max, grid.y_min, grid.y_max}},
                     {"flow", "density_flow.npy"},
                     {"calibrated", "density_calibrated.npy"}};
  if (data.true_log_prob) {
    const std::vector<double> truth = data.true_log_prob(points.cast<double>());
    write_npy(folder + "density_true.npy", Matrix<double>(n, n, truth));
    (*spec)["grid"]["true"] = "density_true.npy";
  }
}

// Images: the first rows of data and samples as intensities in [0, 1] for a picture grid.
void write_image_grids(const RunData& data, const Matrix<float>& flow_samples,
                       const Matrix<float>& model_samples, const std::string& folder,
                       nlohmann::json* spec) {
  LogitTransform transform;
  transform.lambda = data.logit_lambda;
  const auto first = [](const Matrix<float>& x) {
    return x.slice_rows(0, std::min(kImagesInGrid, x.rows()));
  };
  write_npy(folder + "images_data.npy", transform.to_unit(first(data.test)));
  write_npy(folder + "images_flow.npy", transform.to_unit(first(flow_samples)));
  write_npy(folder + "images_calibrated.npy", transform.to_unit(first(model_samples)));
  (*spec)["images"] = {{"shape", {data.image_height, data.image_width}},
                       {"data", "images_data.npy"},
                       {"flow", "images_flow.npy"},
                       {"calibrated", "images_calibrated.npy"}};
}

// Runs the plotting script when it and a Python with matplotlib can be found.
report::PlotOutcome draw_pictures(const RunOptions& options, const std::string& folder) {
  report::PlotOutcome outcome;
  if (options.no_plots) {
    outcome.reason = "--no-plots was given";
    return outcome;
  }
  return draw_with_plot_script(folder);
}

// One short table on stdout, the lines people read first.
void print_summary(const report::RunResults& r, const std::string& folder) {
  std::printf("%-28s %12s %10s %12s\n", "log-likelihood (nats)", "test", "s.e.", "train");
  std::printf("%-28s %12.4f %10.4f %12.4f\n", "flow", r.flow_ll.mean, r.flow_ll.se,
              r.flow_train_ll.mean);
  std::printf("%-28s %12.4f %10.4f %12.4f\n", "calibrated", r.calibrated_ll.mean,
              r.calibrated_ll.se, r.calibrated_train_ll.mean);
  if (!std::isnan(r.exact_ratio_ll.mean)) {
    std::printf("%-28s %12.4f %10.4f\n", "exact ratio, same ceiling", r.exact_ratio_ll.mean,
                r.exact_ratio_ll.se);
  }
  if (!std::isnan(r.true_ll.mean)) {
    std::printf("%-28s %12.4f %10.4f %12.4f\n", "true density", r.true_ll.mean, r.true_ll.se,
                r.true_train_ll.mean);
  }
  const report::Estimate& closed = r.gap_closed;
  const report::Estimate& reachable = r.exact_ratio_gap_closed;
  if (!std::isnan(closed.mean)) {
    std::printf("gap to the truth closed: %.0f%% +- %.0f%%", 100 * closed.mean, 100 * closed.se);
    if (!std::isnan(reachable.mean)) {
      std::printf(" (the exact ratio at the same ceiling: %.0f%% +- %.0f%%)", 100 * reachable.mean,
                  100 * reachable.se);
    }
    std::printf("\n");
  }
  if (r.pixel_space.active) {
    std::printf("%-28s %12.4f %10.4f\n", "flow, bits per pixel", r.pixel_space.flow_bits.mean,
                r.pixel_space.flow_bits.se);
    std::printf("%-28s %12.4f %10.4f\n", "calibrated, bits per pixel",
                r.pixel_space.calibrated_bits.mean, r.pixel_space.calibrated_bits.se);
  }
  std::printf("AUC %.4f, log Z %.4f +- %.4f, ceiling %s, acceptance %.1f%% (predicted %.1f%%)\n",
              r.auc, r.log_z, r.log_z_se,
              std::isfinite(r.ceiling) ? format_number(r.ceiling).c_str() : "none",
              100 * r.acceptance_measured, 100 * r.acceptance_predicted);
  std::printf("wrote %smetrics.json, %sreport.md\n", folder.c_str(), folder.c_str());
}

}  // namespace

RunOptions default_run_options() {
  RunOptions o;
  o.maf.layers = 5;
  o.maf.hidden = 64;
  o.maf.hidden_layers = 2;
  o.train.epochs = 150;
  o.train.batch_size = 128;
  o.train.learning_rate = 1e-3;
  o.train.patience = 20;
  return o;
}

void add_run_options(CLI::App* command, RunOptions* o, bool with_files) {
  // Data.
  if (with_files) {
    CLI::Option* data = command->add_option("--data", o->data, "rows to model, .npy or .csv");
    CLI::Option* dataset = command->add_option(
        "--dataset", o->dataset, "a built-in or installed dataset (see nfcal datasets)");
    data->excludes(dataset);
    command->add_option("--test", o->test, "test rows (default: a seeded split of --data)");
    command->add_option("--validation", o->validation,
                        "validation rows for the flow's early stopping and the classifier's "
                        "tree and ceiling choice (default: a split)");
    command
        ->add_option("--test-fraction", o->test_fraction,
                     "share of --data held out as test rows when --test is not given")
        ->capture_default_str();
    command->add_option("--data-dir", o->data_dir,
                        "folder an installed dataset is read from (see nfcal datasets)");
  } else {
    command->add_option("--dataset", o->dataset, "a built-in dataset (see nfcal datasets)")
        ->capture_default_str();
  }
  command->add_option("--out", o->out, "folder for the results (created if missing)")->required();
  command
      ->add_option("--train-size", o->train_size, "training rows (0: built-in 8000, otherwise all)")
      ->capture_default_str();
  command->add_option("--test-size", o->test_size, "test rows (0: built-in 20000, otherwise all)")
      ->capture_default_str();

  // The flow.
  command->add_option("--layers", o->maf.layers, "MADE layers")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->add_option("--hidden", o->maf.hidden, "hidden units per hidden layer")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  command->add_option("--hidden-layers", o->maf.hidden_layers, "hidden layers per MADE")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  command->add_option("--activation", o->activation, "hidden units: relu, tanh or elu")
      ->capture_default_str();
  command->add_flag("--batch-norm", o->maf.batch_norm, "batch normalization between layers");
  command->add_option("--epochs", o->train.epochs, "most epochs to train")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--batch-size", o->train.batch_size, "rows per minibatch")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--learning-rate", o->train.learning_rate, "Adam step size of the flow")
      ->check(kPositive)
      ->capture_default_str();
  command
      ->add_option("--clip-norm", o->train.clip_norm,
                   "largest global gradient norm per step (0: no clipping)")
      ->check(kNonNegative)
      ->capture_default_str();
  command
      ->add_option("--patience", o->train.patience,
                   "epochs without validation gain before stopping")
      ->check(kPositive)
      ->capture_default_str();

  // The classifier and the calibrated model.
  command->add_option("--trees", o->calibration.classifier.trees, "most boosting rounds")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--max-depth", o->calibration.classifier.max_depth, "depth of each tree")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  command
      ->add_option("--classifier-learning-rate", o->calibration.classifier.learning_rate,
                   "shrinkage per tree")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  command->add_option("--subsample", o->calibration.classifier.subsample, "row fraction per tree")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  command
      ->add_option("--parallel-trees", o->calibration.classifier.parallel_trees,
                   "trees averaged per round, each on its own subsample (a boosted forest)")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--flow-ratio", o->calibration.flow_ratio, "flow samples per data row")
      ->check(kPositive)
      ->capture_default_str();
  add_classifier_input_options(command, &o->calibration);
  CLI::Option* ceiling = command
                             ->add_option("--ceiling", o->ceiling,
                                          "margin ceiling L in nats, auto (best held-out), or none")
                             ->check(kCeiling)
                             ->capture_default_str();
  command
      ->add_option("--target-acceptance", o->target_acceptance,
                   "choose L so that rejection sampling accepts this share")
      ->check(CLI::Range(1e-6, 1.0))
      ->excludes(ceiling);
  command
      ->add_option("--log-z-samples", o->calibration.log_z_samples,
                   "fresh flow samples for log Z (0: 100000 on the CPU, 1000000 on a GPU)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();

  // The report.
  command
      ->add_option("--samples", o->samples,
                   "samples drawn from each model (0: as many as test rows, at most 5000)")
      ->check(kNonNegative)
      ->capture_default_str();
  command
      ->add_option("--max-candidates", o->max_candidates,
                   "candidates the calibrated sampler draws before giving up (0: its default)")
      ->capture_default_str();
  command->add_option("--grid", o->grid, "density grid points per axis for 2-D data")
      ->check(CLI::Range(10, 2000))
      ->capture_default_str();
  command->add_flag("--no-plots", o->no_plots, "write no pictures");
  add_common_options(command, &o->common);
}

namespace {

// Everything after loading the data, in the existing output folder.
void run_in_folder(const RunOptions& options, const Runtime& runtime, const RunData& data,
                   double load_seconds) {
  report::RunResults results;
  results.seconds.emplace_back("load data", load_seconds);
  const std::string folder = options.out + "/";
  check_output_path(folder + "metrics.json");
  auto step = Clock::now();

  // The flow and calibration settings, all seeded by --seed.
  MafConfig maf = options.maf;
  maf.dim = static_cast<int>(data.train.cols());
  maf.activation = parse_activation(options.activation);
  maf.seed = options.common.seed;
  TrainConfig train = options.train;
  train.seed = options.common.seed;
  train.device = runtime.device;
  CalibrationOptions calibration = options.calibration;
  calibration.ceiling = options.target_acceptance > 0
                            ? CeilingChoice::target_acceptance(options.target_acceptance)
                            : CeilingChoice::parse(options.ceiling);
  calibration.seed = options.common.seed + 1;
  calibration.classifier.seed = options.common.seed;
  calibration.classifier.threads = runtime.threads;
  calibration.classifier.device = runtime.device.is_cuda() ? runtime.device.to_string() : "cpu";
  calibration.device = runtime.device;
  maf.validate();
  train.validate();
  calibration.validate();
  const std::size_t n_samples = options.samples > 0 ? static_cast<std::size_t>(options.samples)
                                                    : std::min(data.test.rows(), kMaxReportSamples);
  check_rows_fit_in_memory("--samples", n_samples, static_cast<std::size_t>(maf.dim));
  check_flow_rows_fit_in_memory(calibration, data.train.rows(), maf.dim);
  results.configuration = configuration(options, data, maf, train, calibration, runtime, n_samples);
  log_configuration(options.command, results.configuration);
  spdlog::info("data: {}", data.source);

  // 1. Fit the flow (early stopping on the validation split).
  step = Clock::now();
  Maf flow(maf);
  TrainResult fitted;
  {
    ProgressBar bar("training", static_cast<std::size_t>(train.epochs));
    fitted = fit(flow, data.train, data.validation.rows() > 0 ? &data.validation : nullptr, train,
                 training_progress(&bar));
  }
  results.seconds.emplace_back("fit flow", seconds_since(step));
  spdlog::info("flow: {} epochs, best {} (validation {:.4f} nats)", fitted.epochs_run,
               fitted.best_epoch, fitted.best_validation_log_likelihood);

  // 2. Calibrate it with a classifier of training rows against flow samples; given validation
  // rows, the ones the flow stopped on, choose its trees and ceiling.
  step = Clock::now();
  spdlog::info("calibrating: up to {} trees, {} data rows against {} flow samples",
               calibration.classifier.trees, data.train.rows(),
               std::llround(calibration.flow_ratio * static_cast<double>(data.train.rows())));
  CalibrationReport calibrated_report;
  CalibratedFlow model = [&] {
    ProgressBar bar("classifier", static_cast<std::size_t>(calibration.classifier.trees));
    CalibrationOptions with_progress = calibration;
    with_progress.on_classifier_round = classifier_progress(&bar);
    const Matrix<float>* validation = data.validation.rows() > 0 ? &data.validation : nullptr;
    return calibrate(flow, data.train, with_progress, &calibrated_report, validation);
  }();
  results.seconds.emplace_back("calibrate", seconds_since(step));
  spdlog::info("classifier: {} of {} trees kept, held-out gain {:.4f} +- {:.4f} nats",
               calibrated_report.classifier.trees_kept, calibrated_report.classifier.trees_trained,
               calibrated_report.heldout_gain, calibrated_report.heldout_gain_se);
  warn_about(calibrated_report);

  // 3. Evaluate both models on the test rows (acceptance is measured by step 4's run).
  step = Clock::now();
  const AnyModel any(model);
  EvaluateOptions evaluation;
  evaluation.seed = options.common.seed + 2;
  evaluation.acceptance_samples = 0;
  const Evaluation e = evaluate(any, data.test, evaluation);
  const std::vector<double> flow_ll = to_double(log_prob(flow, data.test, runtime.device));
  const std::vector<double> model_ll = to_double(log_prob(model, data.test, runtime.device));
  results.flow_train_ll =
      report::estimate_mean(to_double(log_prob(flow, data.train, runtime.device)));
  results.calibrated_train_ll =
      report::estimate_mean(to_double(log_prob(model, data.train, runtime.device)));
  std::vector<double> exact_ratio_ll;
  if (data.true_log_prob) {
    // What a perfect classifier would reach with this flow and ceiling, for comparison. It is
    // a diagnostic: when it cannot be computed the run goes on without it.
    try {
      const std::size_t samples =
          std::min(calibration.resolved_log_z_samples(), kMaxExactRatioSamples);
      const ExactRatioReference exact =
          exact_ratio_reference(flow, data.true_log_prob, data.test, model.ceiling(), samples,
                                options.common.seed + kExactRatioSeedOffset);
      results.exact_ratio_ll = {exact.log_likelihood, exact.log_likelihood_se};
      exact_ratio_ll = exact.log_prob;
    } catch (const Error& failed) {
      spdlog::warn("exact-ratio reference skipped: {}", failed.what());
    }
  }
  results.seconds.emplace_back("evaluate", seconds_since(step));

  // 4. Samples of both models; the calibrated ones by exact rejection.
  step = Clock::now();
  const Matrix<float> flow_samples =
      sample_flow(flow, n_samples, options.common.seed + kFlowSampleSeedOffset, runtime.device);
  SamplerOptions sampler;
  sampler.seed = options.common.seed + kModelSampleSeedOffset;
  sampler.device = runtime.device;
  sampler.max_candidates = options.max_candidates;
  SamplerReport sampled;
  spdlog::info("sampling {} rows from the calibrated model by rejection", n_samples);
  Matrix<float> model_samples(0, static_cast<std::size_t>(maf.dim));
  try {
    ProgressBar bar("sampling", n_samples);
    sampler.on_round = sampling_progress(&bar);
    model_samples = sample_calibrated(model, n_samples, sampler, &sampled);
  } catch (const SamplingError& stopped) {
    // The model and its test numbers stand without samples: report them, and say why.
    spdlog::warn("{}", stopped.what());
    results.sampling_failure = stopped.what();
  }
  results.seconds.emplace_back("sample", seconds_since(step));

  // The numbers of the report.
  results.dataset = data.name;
  results.source = data.source;
  results.dim = maf.dim;
  results.train_rows = data.train.rows();
  results.validation_rows = data.validation.rows();
  results.test_rows = data.test.rows();
  results.seed = options.common.seed;
  results.command_line = invocation();
  results.flow_ll = report::estimate_mean(flow_ll);
  results.calibrated_ll = report::estimate_mean(model_ll);
  results.gain = report::estimate_mean(difference(flow_ll, model_ll));
  if (data.true_log_prob) {
    const std::vector<double> true_ll = data.true_log_prob(data.test.cast<double>());
    results.true_ll = report::estimate_mean(true_ll);
    results.true_train_ll = report::estimate_mean(data.true_log_prob(data.train.cast<double>()));
    results.gap_closed = report::gap_share(flow_ll, model_ll, true_ll);
    results.exact_ratio_gap_closed = report::gap_share(flow_ll, exact_ratio_ll, true_ll);
  }
  results.epochs_run = fitted.epochs_run;
  results.best_epoch = fitted.best_epoch;
  results.trees_trained = calibrated_report.classifier.trees_trained;
  results.trees_kept = calibrated_report.classifier.trees_kept;
  results.classifier_input = to_string(calibrated_report.classifier_input);
  results.refit = calibrated_report.classifier.refit;
  results.heldout_gain = calibrated_report.heldout_gain;
  results.heldout_gain_se = calibrated_report.heldout_gain_se;
  results.warnings = calibrated_report.warnings();
  results.auc = e.auc;
  results.log_loss = e.log_loss;
  results.log_z = model.log_z();
  results.log_z_se = model.log_z_se();
  results.ess = model.ess();
  results.ceiling = model.ceiling();
  results.acceptance_predicted = model.acceptance_predicted();
  results.acceptance_measured = sampled.acceptance_measured;
  results.samples_drawn = sampled.accepted;
  results.candidates = sampled.candidates;

  // Images: log-likelihoods in the original pixel space and in bits per pixel.
  if (data.logit_lambda > 0) {
    LogitTransform transform;
    transform.lambda = data.logit_lambda;
    const std::vector<double> jacobian = transform.log_jacobian(data.test);
    const int pixels = maf.dim;
    const auto bits = [pixels](std::vector<double> nats) {
      for (double& v : nats) v = bits_per_pixel(v, pixels);
      return report::estimate_mean(nats);
    };
    report::PixelSpace& p = results.pixel_space;
    p.active = true;
    p.pixels = pixels;
    p.lambda = data.logit_lambda;
    p.flow_nats = report::estimate_mean(plus(flow_ll, jacobian));
    p.calibrated_nats = report::estimate_mean(plus(model_ll, jacobian));
    p.flow_bits = bits(plus(flow_ll, jacobian));
    p.calibrated_bits = bits(plus(model_ll, jacobian));
  }

  // 5. Files: the models, the test rows, samples, and the pictures' inputs.
  step = Clock::now();
  save_flow(folder + "flow.nfcal", flow,
            nlohmann::json{{"data", data.name}, {"epochs_run", fitted.epochs_run}}.dump());
  model.save(folder + "model.nfcal");
  write_npy(folder + "test.npy", data.test);
  write_npy(folder + "samples.npy", model_samples);
  write_npy(folder + "samples_flow.npy", flow_samples);
  nlohmann::json spec = {{"title", data.name},          {"dim", maf.dim},
                         {"data", "test.npy"},          {"flow", "samples_flow.npy"},
                         {"calibrated", "samples.npy"}, {"columns", data.columns}};
  if (data.logit_lambda > 0) {
    spec["kind"] = "image";
    write_image_grids(data, flow_samples, model_samples, folder, &spec);
  } else if (maf.dim == 2) {
    spec["kind"] = "2d";
    write_density_grids(data, model, folder, options.grid, &spec);
  } else {
    spec["kind"] = "tabular";
  }
  write_file_atomically(folder + "plot_spec.json", spec.dump(2) + "\n");
  const report::PlotOutcome plots = draw_pictures(options, options.out);
  if (!plots.made || !plots.reason.empty()) spdlog::warn("pictures: {}", plots.reason);
  results.seconds.emplace_back("report", seconds_since(step));

  // 6. metrics.json and report.md last, so they describe everything above.
  write_file_atomically(folder + "metrics.json", report::metrics_json(results, plots));
  write_file_atomically(folder + "report.md", report::report_markdown(results, plots));
  print_summary(results, folder);
}

}  // namespace

void run_pipeline(const RunOptions& options) {
  const Runtime runtime = apply_common_options(options.common);

  // The data, then the output folder, are checked before any long work; bad data leaves no
  // folder behind.
  const auto start = Clock::now();
  const RunData data = load_run_data(options);
  const double load_seconds = seconds_since(start);

  // A folder this run creates goes away again when the run fails or a signal ends it, so a
  // failure leaves nothing behind; a folder that was there already keeps what it held (the run
  // writes its files only at the end, each atomically).
  const bool created = !std::filesystem::exists(options.out);
  make_folder(options.out);
  std::optional<RemovedOnSignal> removed_on_signal;
  if (created) removed_on_signal.emplace(options.out, RemovedOnSignal::Kind::kFolder);
  try {
    run_in_folder(options, runtime, data, load_seconds);
  } catch (...) {
    if (created) {
      std::error_code ignored;
      std::filesystem::remove_all(options.out, ignored);
    }
    throw;
  }
}

}  // namespace nfcal::cli
