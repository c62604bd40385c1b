// nfcal datasets: the built-in datasets, one per line.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "nfcal/datasets.hpp"

namespace nfcal::cli {

void add_datasets_command(CLI::App& app) {
  CLI::App* command = app.add_subcommand("datasets", "list the built-in datasets");
  command->callback([] {
    std::printf("%-14s %4s  %-13s %s\n", "name", "dim", "true density", "description");
    for (const DatasetInfo& info : list_datasets()) {
      std::printf("%-14s %4d  %-13s %s\n", info.name.c_str(), info.dim,
                  info.known_density ? "known" : "unknown", info.description.c_str());
    }
    std::printf("\nBuilt-in datasets are generated from --seed; none is read from disk.\n");
  });
}

}  // namespace nfcal::cli
