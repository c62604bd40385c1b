// nfcal demo: the whole job on built-in data, needing no input. Fits a flow to two moons,
// reports train and test log-likelihood beside the true one, and writes everything it made.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "nfcal/atomic_file.hpp"
#include "nfcal/datasets.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/npy.hpp"
#include "nfcal/train.hpp"

namespace nfcal::cli {
namespace {

struct DemoOptions {
  CommonOptions common;
  std::string out;
  std::string dataset = "two-moons";
  long long train_rows = 8000;
  long long test_rows = 2000;
  int epochs = 150;
  int hidden = 64;
  int layers = 5;
};

// Mean and standard error of per-row log-likelihoods.
struct Estimate {
  double mean = 0;
  double se = 0;
};
template <typename T>
Estimate estimate(const std::vector<T>& values) {
  double sum = 0;
  for (const T v : values) sum += static_cast<double>(v);
  const double n = static_cast<double>(values.size());
  const double mean = sum / n;
  double squares = 0;
  for (const T v : values) squares += (static_cast<double>(v) - mean) * (v - mean);
  return {mean, values.size() > 1 ? std::sqrt(squares / (n - 1) / n) : 0.0};
}

nlohmann::json to_json(const Estimate& e) { return {{"mean", e.mean}, {"standard_error", e.se}}; }

void run_demo(const DemoOptions& options) {
  const Runtime runtime = apply_common_options(options.common);
  const auto start = std::chrono::steady_clock::now();
  if (options.train_rows < 10 || options.test_rows < 2) {
    throw InvalidArgument("--train-size must be at least 10 and --test-size at least 2");
  }

  // The output folder, checked before any work.
  make_folder(options.out);
  const std::string folder = options.out + "/";
  check_output_path(folder + "metrics.json");

  // Data: one seeded draw split into train and test rows (rows are independent).
  const DatasetInfo info = dataset_info(options.dataset);
  const std::size_t n_train = static_cast<std::size_t>(options.train_rows);
  const std::size_t n_test = static_cast<std::size_t>(options.test_rows);
  const Matrix<double> all = make_dataset(options.dataset, n_train + n_test, options.common.seed);
  const Matrix<double> train = all.slice_rows(0, n_train);
  const Matrix<double> test = all.slice_rows(n_train, n_test);

  MafConfig maf;
  maf.dim = info.dim;
  maf.layers = options.layers;
  maf.hidden = options.hidden;
  maf.seed = options.common.seed;
  TrainConfig config;
  config.epochs = options.epochs;
  config.batch_size = 128;
  config.learning_rate = 1e-3;
  config.patience = 20;
  config.seed = options.common.seed;
  log_configuration("demo", {{"out", options.out},
                             {"dataset", options.dataset},
                             {"train_rows", std::to_string(n_train)},
                             {"test_rows", std::to_string(n_test)},
                             {"layers", std::to_string(maf.layers)},
                             {"hidden", std::to_string(maf.hidden)},
                             {"epochs", std::to_string(config.epochs)},
                             {"batch_size", std::to_string(config.batch_size)},
                             {"learning_rate", format_number(config.learning_rate)},
                             {"seed", std::to_string(maf.seed)},
                             {"threads", std::to_string(runtime.threads)},
                             {"device", "cpu"}});

  // Fit on the training rows (a validation split is held out of them for early stopping).
  Maf flow(maf);
  const Matrix<float> train_f = train.cast<float>();
  const Matrix<float> test_f = test.cast<float>();
  const TrainResult result = fit(flow, train_f, nullptr, config, epoch_logger());

  // Log-likelihoods of the model, and of the true density where it is known.
  const Estimate train_ll = estimate(flow.log_prob(train_f));
  const Estimate test_ll = estimate(flow.log_prob(test_f));
  nlohmann::json metrics = {{"dataset", options.dataset},
                            {"train_rows", n_train},
                            {"test_rows", n_test},
                            {"seed", options.common.seed},
                            {"epochs_run", result.epochs_run},
                            {"best_epoch", result.best_epoch},
                            {"train_log_likelihood", to_json(train_ll)},
                            {"test_log_likelihood", to_json(test_ll)}};
  Estimate true_ll;
  if (info.known_density) {
    true_ll = estimate(dataset_log_prob(options.dataset, test));
    metrics["true_test_log_likelihood"] = to_json(true_ll);
  }

  // Everything the run made, each file written whole or not at all.
  const Matrix<float> samples = flow.sample(n_test, options.common.seed + 1);
  write_npy(folder + "train.npy", train);
  write_npy(folder + "test.npy", test);
  write_npy(folder + "samples.npy", samples);
  save_flow(folder + "flow.nfcal", flow, nlohmann::json{{"dataset", options.dataset}}.dump());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics["seconds"] = seconds;
  write_file_atomically(folder + "metrics.json", metrics.dump(2) + "\n");

  std::printf("dataset %s: %zu train rows, %zu test rows, %d epochs (best %d), %.1f s\n",
              options.dataset.c_str(), n_train, n_test, result.epochs_run, result.best_epoch,
              seconds);
  std::printf("train log-likelihood: %.4f +- %.4f nats\n", train_ll.mean, train_ll.se);
  std::printf("test log-likelihood:  %.4f +- %.4f nats\n", test_ll.mean, test_ll.se);
  if (info.known_density) {
    std::printf("true test log-likelihood: %.4f +- %.4f nats\n", true_ll.mean, true_ll.se);
  }
  std::printf("wrote %smetrics.json, samples.npy, flow.nfcal, train.npy, test.npy\n",
              folder.c_str());
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* command =
      app.add_subcommand("demo", "fit a flow to built-in two-moons data; needs no input");
  command->add_option("--out", options->out, "folder for the results (created if missing)")
      ->required();
  command->add_option("--dataset", options->dataset, "a built-in dataset (see nfcal datasets)")
      ->capture_default_str();
  command->add_option("--train-size", options->train_rows, "training rows")
      ->capture_default_str();
  command->add_option("--test-size", options->test_rows, "test rows")->capture_default_str();
  command->add_option("--epochs", options->epochs, "most epochs to train")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--layers", options->layers, "MADE layers")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->add_option("--hidden", options->hidden, "hidden units per hidden layer")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  add_common_options(command, &options->common);
  command->callback([options] { run_demo(*options); });
}

}  // namespace nfcal::cli
