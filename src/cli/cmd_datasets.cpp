// nfcal datasets: the built-in datasets, and the installable ones with where each is read from
// and whether it is there.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "nfcal/datasets.hpp"
#include "nfcal/image_data.hpp"
#include "nfcal/uci_data.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace nfcal::cli {
namespace {

const char* presence(const std::string& path) {
  return ::access(path.c_str(), R_OK) == 0 ? "installed" : "missing";
}

void list_all() {
  // Generated ones need nothing on disk.
  std::printf("Built-in datasets, generated from --seed (nothing is read from disk):\n\n");
  std::printf("  %-14s %4s  %-13s %s\n", "name", "dim", "true density", "description");
  for (const DatasetInfo& info : list_datasets()) {
    std::printf("  %-14s %4d  %-13s %s\n", info.name.c_str(), info.dim,
                info.known_density ? "known" : "unknown", info.description.c_str());
  }
  std::printf("  %-14s %4s  %-13s %s\n", "mixture-<D>d", "D", "known",
              "a D-dimensional mixture of ten Gaussians, any D from 1 to 1024 (mixture-16d, ...)");

  // Installable ones: where nfcal looks, and whether the files are there.
  const std::string fashion = fashion_mnist_folder();
  std::printf(
      "\nInstallable datasets (nfcal run --dataset NAME; --data-dir overrides the "
      "folder):\n\n");
  std::printf("  %-14s %4s  %-10s %s\n", "name", "dim", "status", "read from");
  std::printf("  %-14s %4d  %-10s %s\n", "fashion-mnist", 784,
              presence(fashion + "/train-images-idx3-ubyte.gz"), fashion.c_str());
  for (const MafDatasetInfo& info : list_maf_datasets()) {
    const std::string folder = maf_dataset_folder(info.name);
    std::printf("  %-14s %4d  %-10s %s/{train,validation,test}.npy\n", info.name.c_str(), info.dim,
                presence(folder + "/train.npy"), folder.c_str());
  }
  std::printf(
      "\nfashion-mnist: apt-get install dataset-fashion-mnist "
      "(or set NFCAL_FASHION_MNIST_DIR).\n"
      "power, gas, hepmass, miniboone, bsds300: convert the MAF paper's download with "
      "scripts/convert_maf_datasets.py\n(or set NFCAL_MAF_DATA_DIR); see "
      "docs/datasets.md.\n");
}

}  // namespace

void add_datasets_command(CLI::App& app) {
  auto options = std::make_shared<CommonOptions>();
  CLI::App* command = app.add_subcommand(
      "datasets", "list the built-in and installable datasets and where each is read from");
  add_common_options(command, options.get());
  command->callback([options] {
    apply_common_options(*options);
    list_all();
  });
}

}  // namespace nfcal::cli
