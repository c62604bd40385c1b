// nfcal sample: draw rows from a saved flow or calibrated model, on the CPU or a GPU.
#include <cstdio>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/csv.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/model_file.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/progress.hpp"

namespace nfcal::cli {
namespace {

struct SampleOptions {
  CommonOptions common;
  std::string model;
  std::string out;
  long long count = 0;
  std::size_t max_candidates = 0;  // 0: the sampler's default
};

void run_sample(const SampleOptions& options) {
  const Runtime runtime = apply_common_options(options.common);
  if (options.count < 1) throw InvalidArgument("--count must be at least 1");
  check_table_extension(options.out, "--out");
  check_output_path(options.out);
  const AnyModel model = load_model(options.model, runtime.threads);
  const Maf& flow = model.flow();

  log_configuration("sample", {{"model", options.model},
                               {"kind", model.kind()},
                               {"dim", std::to_string(flow.dim())},
                               {"count", std::to_string(options.count)},
                               {"out", options.out},
                               {"seed", std::to_string(options.common.seed)},
                               {"threads", std::to_string(runtime.threads)},
                               {"device", runtime.device.to_string()}});

  // A calibrated model samples by rejection, a flow directly; rows are keyed by (seed, row),
  // so the CPU and the GPU give the same samples.
  const auto count = static_cast<std::size_t>(options.count);
  SamplerOptions sampler;
  sampler.seed = options.common.seed;
  sampler.device = runtime.device;
  sampler.max_candidates = options.max_candidates;
  SamplerReport report;
  const Matrix<float> samples = [&] {
    ProgressBar bar("sampling", count);
    if (model.is_calibrated()) sampler.on_round = sampling_progress(&bar);
    return model.sample(count, sampler, &report);
  }();
  if (model.is_calibrated()) {
    std::string summary = report.summary();
    if (!summary.empty() && summary.back() == '\n') summary.pop_back();
    spdlog::info("{}", summary);
  }
  write_table(options.out, samples);
  std::printf("wrote %zu samples of dimension %d to %s\n", samples.rows(), flow.dim(),
              options.out.c_str());
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto options = std::make_shared<SampleOptions>();
  CLI::App* command = app.add_subcommand("sample", "draw samples from a model");
  command
      ->add_option("--model", options->model,
                   "a model file written by nfcal fit or nfcal calibrate")
      ->required();
  command->add_option("--count", options->count, "how many rows to draw")->required();
  command->add_option("--out", options->out, "where to write the rows, .npy or .csv")->required();
  command
      ->add_option("--max-candidates", options->max_candidates,
                   "calibrated models: candidates drawn before giving up (0: max(1e6, 1000 count))")
      ->capture_default_str();
  add_common_options(command, &options->common);
  command->callback([options] { run_sample(*options); });
}

}  // namespace nfcal::cli
