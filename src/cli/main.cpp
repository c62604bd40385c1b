// The nfcal command line tool: subcommands with long options; results on stdout, progress
// and errors on stderr, exit status 0 on success, 1 on a failure, 2 on a usage error.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include <CLI/CLI.hpp>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"
#include "nfcal/version.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace {

constexpr int kFailure = 1;
constexpr int kUsageError = 2;

// One error line on stderr in the form every nfcal failure takes.
int report(const std::string& message, int status) {
  std::cerr << "nfcal: error: " << message << "\n";
  return status;
}

// Ctrl-C, kill and a closed terminal remove what the command was making (the temporary files of
// atomic writes, a run's new output folder), then end the program as the signal would have.
extern "C" void remove_unfinished_and_end(int signal_number) {
  nfcal::remove_registered_paths();
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void install_signal_handlers() {
  for (const int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction current {};
    // A signal the caller chose to ignore (a background job's SIGINT) stays ignored.
    if (::sigaction(signal_number, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
      continue;
    }
    struct sigaction action {};
    action.sa_handler = remove_unfinished_and_end;
    sigemptyset(&action.sa_mask);
    ::sigaction(signal_number, &action, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  install_signal_handlers();

  // The command tree: one subcommand per file in src/cli/cmd_*.cpp.
  CLI::App app{"nfcal: masked autoregressive flows calibrated by a classifier", "nfcal"};
  app.set_version_flag("--version", std::string("nfcal ") + nfcal::kVersion);
  app.require_subcommand(1);
  app.fallthrough(false);
  nfcal::cli::add_fit_command(app);
  nfcal::cli::add_sample_command(app);
  nfcal::cli::add_score_command(app);
  nfcal::cli::add_calibrate_command(app);
  nfcal::cli::add_evaluate_command(app);
  nfcal::cli::add_run_command(app);
  nfcal::cli::add_demo_command(app);
  nfcal::cli::add_datasets_command(app);
  nfcal::cli::add_info_command(app);

  // Commands run inside parse() through their callbacks; every failure ends up here.
  nfcal::cli::record_invocation(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return app.exit(version);
  } catch (const CLI::ParseError& error) {
    std::string help = "nfcal --help";
    for (const CLI::App* command : app.get_subcommands()) {
      help = "nfcal " + command->get_name() + " --help";
    }
    return report(std::string(error.what()) + " (see " + help + ")", kUsageError);
  } catch (const nfcal::Error& error) {
    return report(error.what(), kFailure);
  } catch (const std::bad_alloc&) {
    return report("out of memory", kFailure);
  } catch (const std::exception& error) {
    return report(std::string("unexpected failure: ") + error.what(), kFailure);
  }
  return 0;
}
