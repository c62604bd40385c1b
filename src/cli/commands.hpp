// The subcommands of `nfcal`. Each is one file src/cli/cmd_<name>.cpp defining its
// add_<name>_command, registered in main.cpp in the order `nfcal --help` lists them.
#pragma once

#include <CLI/CLI.hpp>

namespace nfcal::cli {

void add_fit_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_evaluate_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_datasets_command(CLI::App& app);
void add_info_command(CLI::App& app);

}  // namespace nfcal::cli
