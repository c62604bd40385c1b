// Loaders of the converted MAF benchmark sets, on small splits the tests write.
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "nfcal/error.hpp"
#include "nfcal/npy.hpp"
#include "nfcal/uci_data.hpp"

namespace nfcal {
namespace {

// A folder holding train/validation/test splits of `dim` columns for set `name`.
std::string make_splits(const std::string& name, std::size_t dim) {
  const std::string folder = ::testing::TempDir() + "maf_" + name + "_" + std::to_string(dim);
  ::mkdir(folder.c_str(), 0755);
  const std::size_t rows[3] = {30, 5, 7};
  const char* splits[3] = {"train", "validation", "test"};
  for (int s = 0; s < 3; ++s) {
    Matrix<float> x(rows[s], dim);
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(s + 0.01 * i);
    write_npy(folder + "/" + splits[s] + ".npy", x);
  }
  return folder;
}

template <typename E, typename F>
void expect_error(F call, const std::string& part) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one mentioning '" << part << "'";
  } catch (const E& error) {
    EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
  }
}

TEST(MafDatasetTest, LoadsTheThreeSplitsWithThePublishedWidths) {
  for (const MafDatasetInfo& info : list_maf_datasets()) {
    const std::string folder = make_splits(info.name, static_cast<std::size_t>(info.dim));
    const MafDataset set = load_maf_dataset(info.name, folder);
    EXPECT_EQ(set.train.rows(), 30u) << info.name;
    EXPECT_EQ(set.validation.rows(), 5u) << info.name;
    EXPECT_EQ(set.test.rows(), 7u) << info.name;
    EXPECT_EQ(set.test.cols(), static_cast<std::size_t>(info.dim));
    EXPECT_FLOAT_EQ(set.test(0, 1), 2.01f);
  }
  EXPECT_EQ(list_maf_datasets().size(), 5u);
  EXPECT_TRUE(is_maf_dataset("gas"));
  EXPECT_FALSE(is_maf_dataset("two-moons"));
}

TEST(MafDatasetTest, AWrongWidthIsNamedWithThePublishedOne) {
  const std::string folder = make_splits("gasx", 7);
  expect_error<DataError>([&] { load_maf_dataset("gas", folder); },
                          "train.npy: 7 columns, but gas has 8");
}

TEST(MafDatasetTest, MissingFilesPointToTheConversionScript) {
  expect_error<FileError>([] { load_maf_dataset("power", "/nonexistent/power"); },
                          "/nonexistent/power/train.npy: not found; make the power splits with "
                          "scripts/convert_maf_datasets.py");
  expect_error<InvalidArgument>([] { load_maf_dataset("mnist", "/tmp"); },
                                "'mnist' is not a MAF benchmark set");
}

TEST(MafDatasetTest, NanInASplitIsNamedByFileRowAndColumn) {
  const std::string folder = make_splits("powernan", 6);
  Matrix<float> bad(4, 6, 1.0f);
  bad(2, 5) = std::numeric_limits<float>::quiet_NaN();
  write_npy(folder + "/validation.npy", bad);
  expect_error<DataError>([&] { load_maf_dataset("power", folder); }, "validation.npy");
  expect_error<DataError>([&] { load_maf_dataset("power", folder); }, "row 2");
}

TEST(MafDatasetTest, TheDefaultFolderFollowsTheEnvironment) {
  ::setenv("NFCAL_MAF_DATA_DIR", "/data/maf", 1);
  EXPECT_EQ(maf_dataset_folder("gas"), "/data/maf/gas");
  ::unsetenv("NFCAL_MAF_DATA_DIR");
  ::setenv("XDG_DATA_HOME", "/xdg", 1);
  EXPECT_EQ(maf_dataset_folder("gas"), "/xdg/nfcal/maf/gas");
  ::unsetenv("XDG_DATA_HOME");
}

}  // namespace
}  // namespace nfcal
