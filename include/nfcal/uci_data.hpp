// The density-estimation benchmark sets of the MAF paper (Papamakarios, Pavlakou and Murray,
// 2017): POWER, GAS, HEPMASS, MINIBOONE and BSDS300, from UCI and the BSDS300 image patches.
//
// They ship in no package. scripts/convert_maf_datasets.py applies the paper's published
// preprocessing to the standard download and writes three .npy files per set,
// train.npy, validation.npy and test.npy; docs/datasets.md describes every step. These
// loaders read those files and check them against the published shapes.
#pragma once

#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

namespace nfcal {

/// One benchmark set after preprocessing.
struct MafDataset {
  std::string name;
  Matrix<float> train, validation, test;
};

/// What the loaders know of a set before reading it.
struct MafDatasetInfo {
  std::string name;      // "power", "gas", "hepmass", "miniboone", "bsds300"
  int dim = 0;           // columns after preprocessing
  std::string download;  // the file(s) of the standard download the script reads
};

/// The five sets, in the order of the paper's tables.
std::vector<MafDatasetInfo> list_maf_datasets();

/// True when `name` is one of them.
bool is_maf_dataset(const std::string& name);

/// Where the converted files of set `name` are read from by default:
/// $NFCAL_MAF_DATA_DIR/NAME, else $XDG_DATA_HOME/nfcal/maf/NAME, else
/// ~/.local/share/nfcal/maf/NAME.
std::string maf_dataset_folder(const std::string& name);

/// Reads train.npy, validation.npy and test.npy from `folder` (default: maf_dataset_folder).
/// Throws InvalidArgument for an unknown name; FileError naming the missing file and how to
/// make it; DataError naming the file when a split has no rows, the wrong number of columns
/// or a NaN/Inf (row and column named).
MafDataset load_maf_dataset(const std::string& name, const std::string& folder = "");

}  // namespace nfcal
