// CSV reading and writing, and tables chosen by extension: header detection, exact round
// trips, and positions named in every error.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/atomic_file.hpp"
#include "nfcal/csv.hpp"
#include "nfcal/error.hpp"
#include "nfcal/npy.hpp"

#include "temp_folder_test.hpp"

namespace nfcal {
namespace {

class CsvTest : public testing::TempFolderTest {};

// The message decode_csv throws for `text` ("" when it throws nothing).
std::string csv_error(const std::string& text) {
  try {
    decode_csv(text, "d.csv");
  } catch (const DataError& error) {
    return error.what();
  }
  return "";
}

TEST_F(CsvTest, ReadsNumbersWithoutAHeader) {
  std::vector<std::string> header = {"stale"};
  const Matrix<double> m = decode_csv("1,2.5\n-3e2, +4\n", "d.csv", &header);
  EXPECT_TRUE(header.empty());
  ASSERT_EQ(m.rows(), 2u);
  ASSERT_EQ(m.cols(), 2u);
  EXPECT_EQ(m.values(), (std::vector<double>{1, 2.5, -300, 4}));
}

TEST_F(CsvTest, DetectsAHeaderRowAndStripsQuotes) {
  std::vector<std::string> header;
  const Matrix<double> m = decode_csv("\"x\", y\r\n0.5,1\r\n\n2,3\r\n", "d.csv", &header);
  EXPECT_EQ(header, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(m.values(), (std::vector<double>{0.5, 1, 2, 3}));
}

TEST_F(CsvTest, AHeaderWithOneNumericNameIsStillAHeader) {
  std::vector<std::string> header;
  const Matrix<double> m = decode_csv("x,2\n1,2\n", "d.csv", &header);
  EXPECT_EQ(header, (std::vector<std::string>{"x", "2"}));
  EXPECT_EQ(m.rows(), 1u);
}

TEST_F(CsvTest, RaggedRowsNameTheFileAndLine) {
  const std::string message = csv_error("a,b\n1,2\n\n3,4,5\n");
  EXPECT_EQ(message, "d.csv:4: 3 cells, but line 1 has 2");
}

TEST_F(CsvTest, NonNumericAndEmptyCellsNameTheLineAndColumn) {
  EXPECT_EQ(csv_error("1,2\n3,abc\n"), "d.csv:2:2: 'abc' is not a number");
  EXPECT_EQ(csv_error("1,2\n,4\n"), "d.csv:2:1: empty cell");
  EXPECT_EQ(csv_error("1,2\n3,4x\n"), "d.csv:2:2: '4x' is not a number");
  EXPECT_EQ(csv_error("1,2\n3,1e999\n"), "d.csv:2:2: '1e999' is out of range");
  EXPECT_EQ(csv_error("-1e999,2\n"), "d.csv:1:1: '-1e999' is out of range");
}

TEST_F(CsvTest, NanAndInfinityAreReadForLaterChecks) {
  const Matrix<double> m = decode_csv("nan,inf\n-inf,1\n", "d.csv");
  EXPECT_TRUE(std::isnan(m(0, 0)));
  EXPECT_EQ(m(0, 1), std::numeric_limits<double>::infinity());
  EXPECT_EQ(m(1, 0), -std::numeric_limits<double>::infinity());
}

TEST_F(CsvTest, RoundTripsDoublesAndFloatsExactly) {
  const Matrix<double> doubles(
      2, 3, std::vector<double>{0.1, -1.0 / 3.0, 1e-310, 123456789.125, -0.0, 6.02214076e23});
  write_csv(path("d.csv"), doubles, {"a", "b", "c"});
  std::vector<std::string> header;
  const Matrix<double> back = read_csv(path("d.csv"), &header);
  EXPECT_EQ(header, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(back.values(), doubles.values());

  const Matrix<float> floats(1, 2, std::vector<float>{0.1f, 16777217.0f});
  EXPECT_EQ(decode_csv(encode_csv(floats), "f.csv").cast<float>().values(), floats.values());
}

TEST_F(CsvTest, WritingRejectsHeadersThatDoNotFit) {
  EXPECT_THROW(encode_csv(Matrix<double>(1, 2), {"only one"}), InvalidArgument);
  EXPECT_THROW(encode_csv(Matrix<double>(1, 1), {"a,b"}), InvalidArgument);
}

TEST_F(CsvTest, TablesChooseTheFormatByExtensionInAnyCase) {
  const Matrix<double> m(2, 2, std::vector<double>{1, 2, 3, 4});
  write_table(path("t.NPY"), m);
  write_table(path("t.csv"), m, {"p", "q"});
  EXPECT_EQ(read_file_bytes(path("t.NPY")).substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(read_file_bytes(path("t.csv")), "p,q\n1,2\n3,4\n");
  EXPECT_EQ(read_table(path("t.NPY")).values(), m.values());
  EXPECT_EQ(read_table_float(path("t.csv")).values(), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(CsvTest, VectorTablesAreOneDimensionalNpyOrOneColumnCsv) {
  write_table(path("v.npy"), std::vector<float>{1.5f, 2.5f});
  write_table(path("v.csv"), std::vector<float>{1.5f, 2.5f}, "log_prob");
  EXPECT_EQ(parse_npy_header(read_file_bytes(path("v.npy")), "v").shape.size(), 1u);
  EXPECT_EQ(read_file_bytes(path("v.csv")), "log_prob\n1.5\n2.5\n");
}

TEST_F(CsvTest, OtherExtensionsAreRejectedNamingThePath) {
  try {
    read_table(path("data.txt"));
    FAIL() << "no error";
  } catch (const FileError& error) {
    EXPECT_EQ(std::string(error.what()),
              path("data.txt") + ": unsupported file type '.txt'; use .npy or .csv");
  }
  EXPECT_THROW(write_table(path("noext"), Matrix<double>(1, 1)), FileError);
  EXPECT_THROW(write_table(path("dir.v1/file"), Matrix<double>(1, 1)), FileError);
  EXPECT_TRUE(is_table_path("a/b.Csv"));
  EXPECT_FALSE(is_table_path("a.npy/b"));
}

}  // namespace
}  // namespace nfcal
