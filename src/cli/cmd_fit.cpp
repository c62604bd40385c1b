// nfcal fit: train a MAF on rows of a table and save it as a flow model file.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "nfcal/maf.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/train.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress.hpp"

namespace nfcal::cli {
namespace {

struct FitOptions {
  CommonOptions common;
  std::string data;
  std::string validation;
  std::string out;
  MafConfig maf;
  TrainConfig train;
  std::string activation = to_string(MafConfig{}.activation);
  std::string ordering = to_string(MafConfig{}.ordering);
};

void run_fit(const FitOptions& options) {
  const Runtime runtime = apply_common_options(options.common);

  // Everything that can be checked before training is checked first.
  check_output_path(options.out);
  // Without a validation file, fit() holds some training rows out for early stopping.
  const Matrix<float> train =
      options.validation.empty()
          ? load_rows(options.data, 0, "training data", 4, "to hold out a validation split")
          : load_rows(options.data, 0, "training data", 2, "to train");
  warn_about_constant_columns(train, options.data);
  Matrix<float> validation;
  if (!options.validation.empty()) {
    validation = load_rows(options.validation, 0, "validation data");
    if (validation.cols() != train.cols()) {
      throw DataError(options.validation + ": " + std::to_string(validation.cols()) +
                      " columns, but the training data " + options.data + " has " +
                      std::to_string(train.cols()));
    }
  }

  // The model and the optimizer, both seeded by --seed.
  MafConfig maf = options.maf;
  maf.dim = static_cast<int>(train.cols());
  maf.activation = parse_activation(options.activation);
  maf.ordering = parse_ordering(options.ordering);
  maf.seed = options.common.seed;
  TrainConfig config = options.train;
  config.seed = options.common.seed;
  config.device = runtime.device;
  maf.validate();
  config.validate();

  log_configuration("fit",
                    {{"data", options.data},
                     {"rows", std::to_string(train.rows())},
                     {"dim", std::to_string(maf.dim)},
                     {"validation", options.validation.empty() ? "split" : options.validation},
                     {"out", options.out},
                     {"layers", std::to_string(maf.layers)},
                     {"hidden", std::to_string(maf.hidden)},
                     {"hidden_layers", std::to_string(maf.hidden_layers)},
                     {"activation", to_string(maf.activation)},
                     {"ordering", to_string(maf.ordering)},
                     {"batch_norm", maf.batch_norm ? "true" : "false"},
                     {"epochs", std::to_string(config.epochs)},
                     {"batch_size", std::to_string(config.batch_size)},
                     {"learning_rate", format_number(config.learning_rate)},
                     {"clip_norm", format_number(config.clip_norm)},
                     {"patience", std::to_string(config.patience)},
                     {"seed", std::to_string(maf.seed)},
                     {"threads", std::to_string(runtime.threads)},
                     {"device", runtime.device.to_string()}});

  // Train, then save with what produced the model.
  Maf flow(maf);
  const TrainResult result = [&] {
    ProgressBar bar("training", static_cast<std::size_t>(config.epochs));
    return fit(flow, train, options.validation.empty() ? nullptr : &validation, config,
               training_progress(&bar));
  }();
  const nlohmann::json metadata = {
      {"data", options.data},
      {"rows", train.rows()},
      {"validation", options.validation},
      {"epochs_run", result.epochs_run},
      {"best_epoch", result.best_epoch},
      {"best_validation_log_likelihood", result.best_validation_log_likelihood}};
  save_flow(options.out, flow, metadata.dump());

  std::printf("best_epoch=%d epochs_run=%d validation_log_likelihood=%s stopped_early=%s\n",
              result.best_epoch, result.epochs_run,
              format_number(result.best_validation_log_likelihood).c_str(),
              result.stopped_early ? "true" : "false");
  std::printf("wrote %s\n", options.out.c_str());
}

}  // namespace

void add_fit_command(CLI::App& app) {
  auto options = std::make_shared<FitOptions>();
  CLI::App* command = app.add_subcommand("fit", "train a masked autoregressive flow on data");

  // Files.
  command->add_option("--data", options->data, "training rows, .npy or .csv")->required();
  command->add_option("--validation", options->validation,
                      "validation rows for early stopping (default: a held-out split)");
  command->add_option("--out", options->out, "the flow model file to write")->required();

  // The flow.
  command->add_option("--layers", options->maf.layers, "MADE layers")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->add_option("--hidden", options->maf.hidden, "hidden units per hidden layer")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  command->add_option("--hidden-layers", options->maf.hidden_layers, "hidden layers per MADE")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  command->add_option("--activation", options->activation, "relu, tanh or elu")
      ->check(CLI::IsMember({"relu", "tanh", "elu"}))
      ->capture_default_str();
  command
      ->add_option("--ordering", options->ordering,
                   "variable order between layers: reversed or random")
      ->check(CLI::IsMember({"reversed", "random"}))
      ->capture_default_str();
  command->add_flag("--batch-norm", options->maf.batch_norm,
                    "batch normalization between MADE layers");

  // Training.
  command->add_option("--epochs", options->train.epochs, "most epochs to train")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--batch-size", options->train.batch_size, "rows per minibatch")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--learning-rate", options->train.learning_rate, "Adam step size")
      ->check(kPositive)
      ->capture_default_str();
  command->add_option("--weight-decay", options->train.weight_decay, "decoupled weight decay")
      ->check(kNonNegative)
      ->capture_default_str();
  command
      ->add_option("--clip-norm", options->train.clip_norm,
                   "largest global gradient norm per step (0: no clipping)")
      ->check(kNonNegative)
      ->capture_default_str();
  command
      ->add_option("--patience", options->train.patience,
                   "epochs without validation gain before stopping")
      ->check(kPositive)
      ->capture_default_str();
  add_common_options(command, &options->common);

  command->callback([options] { run_fit(*options); });
}

}  // namespace nfcal::cli
