// nfcal run: from rows (a file or a named dataset) to a calibrated model, samples and a
// report in one folder. The work is in run_pipeline.cpp, shared with `nfcal demo`.
#include <memory>

#include "cli/commands.hpp"
#include "cli/run_pipeline.hpp"

namespace nfcal::cli {

void add_run_command(CLI::App& app) {
  auto options = std::make_shared<RunOptions>(default_run_options());
  CLI::App* command = app.add_subcommand(
      "run", "fit, calibrate, evaluate and sample in one go, with a report in --out");
  add_run_options(command, options.get(), /*with_files=*/true);
  command->callback([options] {
    // One source of rows is required; naming none is a usage error like a missing option.
    if (options->data.empty() && options->dataset.empty()) {
      throw CLI::RequiredError("--data FILE or --dataset NAME");
    }
    run_pipeline(*options);
  });
}

}  // namespace nfcal::cli
