// nfcal score: the log density of every row of a table under a saved flow or calibrated
// model, on the CPU or a GPU.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/csv.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/model_file.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace nfcal::cli {
namespace {

struct ScoreOptions {
  CommonOptions common;
  std::string model;
  std::string data;
  std::string out;
};

void run_score(const ScoreOptions& options) {
  const Runtime runtime = apply_common_options(options.common);
  check_table_extension(options.out, "--out");
  check_output_path(options.out);
  const AnyModel model = load_model(options.model, runtime.threads);
  const Maf& flow = model.flow();
  const Matrix<float> x = load_rows(options.data, flow.dim(), "data to score");
  if (x.rows() == 1) {
    spdlog::warn("{}: one row, so the mean log-likelihood has no standard error", options.data);
  }

  log_configuration("score", {{"model", options.model},
                              {"data", options.data},
                              {"rows", std::to_string(x.rows())},
                              {"dim", std::to_string(flow.dim())},
                              {"out", options.out},
                              {"threads", std::to_string(runtime.threads)},
                              {"device", runtime.device.to_string()}});

  // One log density per row, and their mean with its standard error on stdout.
  const std::vector<float> log_p = model.log_prob(x, runtime.device);
  write_table(options.out, log_p, "log_prob");
  double sum = 0;
  double squares = 0;
  for (const float v : log_p) sum += v;
  const double mean = sum / static_cast<double>(log_p.size());
  for (const float v : log_p) squares += (v - mean) * (v - mean);
  double se = log_p.size() > 1 ? std::sqrt(squares / static_cast<double>(log_p.size() - 1) /
                                           static_cast<double>(log_p.size()))
                               : 0.0;

  // Rows far outside the data get a density below float range: -inf, which is the true answer
  // rounded, but it takes the mean with it, so say which rows.
  const auto first_zero = std::find_if(log_p.begin(), log_p.end(), [](float v) {
    return v == -std::numeric_limits<float>::infinity();
  });
  if (first_zero != log_p.end()) {
    const auto zero_rows =
        std::count(first_zero, log_p.end(), -std::numeric_limits<float>::infinity());
    spdlog::warn(
        "{}: {} of {} rows (the first is row {}) lie where the model's log density is below "
        "float range, and were scored -inf; so is the mean",
        options.data, zero_rows, log_p.size(), first_zero - log_p.begin());
    se = std::numeric_limits<double>::infinity();
  }
  std::printf("rows=%zu mean_log_likelihood=%s standard_error=%s\n", log_p.size(),
              format_number(mean).c_str(), format_number(se).c_str());
  std::printf("wrote %s\n", options.out.c_str());
}

}  // namespace

void add_score_command(CLI::App& app) {
  auto options = std::make_shared<ScoreOptions>();
  CLI::App* command = app.add_subcommand("score", "log density of every row under a model");
  command
      ->add_option("--model", options->model,
                   "a model file written by nfcal fit or nfcal calibrate")
      ->required();
  command->add_option("--data", options->data, "rows to score, .npy or .csv")->required();
  command->add_option("--out", options->out, "where to write one log density per row")->required();
  add_common_options(command, &options->common, false);
  command->callback([options] { run_score(*options); });
}

}  // namespace nfcal::cli
