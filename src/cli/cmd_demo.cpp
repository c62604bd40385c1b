// nfcal demo: `nfcal run` on built-in data, needing no input: fits a small flow to two moons,
// calibrates it, and writes the report with pictures of both densities into --out.
#include <memory>

#include "cli/commands.hpp"
#include "cli/run_pipeline.hpp"

namespace nfcal::cli {

void add_demo_command(CLI::App& app) {
  auto options = std::make_shared<RunOptions>(default_run_options());
  options->command = "demo";
  options->dataset = "two-moons";
  // A small flow, trained in seconds, whose artefacts (a bridge between the moons, smeared
  // ends) calibration visibly repairs.
  options->maf.layers = 4;
  options->maf.hidden = 32;
  CLI::App* command = app.add_subcommand(
      "demo", "the whole job on built-in two-moons data, needing no input (see nfcal run)");
  add_run_options(command, options.get(), /*with_files=*/false);
  command->callback([options] { run_pipeline(*options); });
}

}  // namespace nfcal::cli
