// nfcal sample: draw rows from a saved flow or calibrated model, on the CPU or a GPU, and on
// request a picture of them.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "nfcal/atomic_file.hpp"
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
  std::string plot;                // "" none, else a .png file
};

// A scratch folder beside `path`, so the finished picture moves into place by a rename on
// the same file system; removed with everything in it when this goes out of scope.
class ScratchFolder {
 public:
  explicit ScratchFolder(const std::string& path) {
    const std::filesystem::path parent = std::filesystem::absolute(path).parent_path();
    std::string pattern = (parent / ".nfcal-plot-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw FileError("cannot create a scratch folder in '" + parent.string() + "' for " + path);
    }
    folder_ = pattern;
    removed_on_signal_.emplace(folder_, RemovedOnSignal::Kind::kFolder);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }
  std::string file(const std::string& name) const { return folder_ + "/" + name; }

 private:
  std::string folder_;
  std::optional<RemovedOnSignal> removed_on_signal_;
};

// Draws the samples with the plotting script: a histogram per column, and scatter plots of
// pairs of the first columns. Throws Error with the script's reason when there is no picture.
void draw_samples(const Matrix<float>& samples, const std::string& png, const std::string& title,
                  const std::string& kind) {
  const ScratchFolder scratch(png);
  write_table(scratch.file("samples.npy"), samples);
  const nlohmann::json spec = {{"kind", "sample"},
                               {"set", kind},
                               {"samples", "samples.npy"},
                               {"title", title},
                               {"out", "samples.png"}};
  write_file_atomically(scratch.file("plot_spec.json"), spec.dump(2) + "\n");
  const report::PlotOutcome outcome = draw_with_plot_script(scratch.file(""));
  if (!outcome.made) throw Error("--plot: " + outcome.reason);
  std::error_code error;
  std::filesystem::rename(scratch.file("samples.png"), png, error);
  if (error) throw FileError("cannot write '" + png + "': " + error.message());
}

void run_sample(const SampleOptions& options) {
  const Runtime runtime = apply_common_options(options.common);
  if (options.count < 1) throw InvalidArgument("--count must be at least 1");
  check_table_extension(options.out, "--out");
  check_output_path(options.out);
  if (!options.plot.empty()) {
    if (std::filesystem::path(options.plot).extension() != ".png") {
      throw InvalidArgument("--plot: '" + options.plot + "' should end in .png");
    }
    check_output_path(options.plot);
  }
  const AnyModel model = load_model(options.model, runtime.threads);
  const Maf& flow = model.flow();
  check_rows_fit_in_memory("--count", static_cast<std::size_t>(options.count),
                           static_cast<std::size_t>(flow.dim()));

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

  if (!options.plot.empty()) {
    draw_samples(samples, options.plot, options.model + ", " + model.kind() + " model",
                 model.kind());
    std::printf("wrote %s\n", options.plot.c_str());
  }
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
  command->add_option("--plot", options->plot,
                      "also draw the samples into this .png: a histogram per column and "
                      "scatter plots of pairs of the first columns");
  add_common_options(command, &options->common);
  command->callback([options] { run_sample(*options); });
}

}  // namespace nfcal::cli
