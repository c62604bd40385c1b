// Loading the converted MAF benchmark sets and checking them against the published shapes.
#include "nfcal/uci_data.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "nfcal/error.hpp"
#include "nfcal/npy.hpp"
#include "nfcal/train.hpp"

namespace nfcal {
namespace {

// Reads one split and checks its shape and values.
Matrix<float> read_split(const std::string& folder, const std::string& split, int dim,
                         const std::string& name) {
  const std::string path = folder + "/" + split + ".npy";
  if (::access(path.c_str(), R_OK) != 0) {
    throw FileError(path + ": not found; make the " + name +
                    " splits with scripts/convert_maf_datasets.py (see docs/datasets.md)");
  }
  Matrix<float> x = read_npy_float(path);
  if (x.rows() == 0) throw DataError(path + ": no rows");
  if (x.cols() != static_cast<std::size_t>(dim)) {
    throw DataError(path + ": " + std::to_string(x.cols()) + " columns, but " + name + " has " +
                    std::to_string(dim) + " after the published preprocessing");
  }
  check_rows(x, dim, path);
  return x;
}

}  // namespace

std::vector<MafDatasetInfo> list_maf_datasets() {
  return {{"power", 6, "power/data.npy"},
          {"gas", 8, "gas/ethylene_CO.pickle"},
          {"hepmass", 21, "hepmass/1000_train.csv and hepmass/1000_test.csv"},
          {"miniboone", 43, "miniboone/data.npy"},
          {"bsds300", 63, "BSDS300/BSDS300.hdf5"}};
}

bool is_maf_dataset(const std::string& name) {
  for (const MafDatasetInfo& info : list_maf_datasets()) {
    if (info.name == name) return true;
  }
  return false;
}

std::string maf_dataset_folder(const std::string& name) {
  if (const char* dir = std::getenv("NFCAL_MAF_DATA_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/" + name;
  }
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/nfcal/maf/" + name;
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/share/nfcal/maf/" + name;
}

MafDataset load_maf_dataset(const std::string& name, const std::string& folder) {
  // The name decides the expected width.
  int dim = 0;
  for (const MafDatasetInfo& info : list_maf_datasets()) {
    if (info.name == name) dim = info.dim;
  }
  if (dim == 0) {
    throw InvalidArgument("'" + name +
                          "' is not a MAF benchmark set (power, gas, hepmass, miniboone, "
                          "bsds300)");
  }

  const std::string where = folder.empty() ? maf_dataset_folder(name) : folder;
  MafDataset set;
  set.name = name;
  set.train = read_split(where, "train", dim, name);
  set.validation = read_split(where, "validation", dim, name);
  set.test = read_split(where, "test", dim, name);
  return set;
}

}  // namespace nfcal
