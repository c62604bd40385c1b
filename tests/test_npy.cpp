// NumPy .npy reading and writing, and atomic file writes: round trips for every dtype and
// format version, files laid out byte by byte as NumPy lays them out, and every bad file.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"
#include "nfcal/npy.hpp"

#include "temp_folder_test.hpp"

namespace nfcal {
namespace {

class NpyTest : public testing::TempFolderTest {};

// The message of the FileError or DataError a decode throws ("" when none is thrown).
std::string decode_error(const std::string& bytes) {
  try {
    decode_npy(bytes, "bad.npy");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

// An .npy file assembled by hand: magic, version, header length of the version's width,
// the header text padded to 64 bytes with '\n' last, then `data`.
std::string hand_made(int major, const std::string& dict, const std::string& data) {
  const std::size_t prefix = 6 + 2 + (major == 1 ? 2 : 4);
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  for (std::size_t b = 0; b < (major == 1 ? 2u : 4u); ++b) {
    bytes += static_cast<char>((header.size() >> (8 * b)) & 0xFF);
  }
  return bytes + header + data;
}

// The bytes of `values` in the given byte order.
template <typename T>
std::string raw_bytes(const std::vector<T>& values, bool big_endian) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  if (big_endian) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      for (std::size_t b = 0; b < sizeof(T) / 2; ++b) {
        std::swap(bytes[i * sizeof(T) + b], bytes[i * sizeof(T) + sizeof(T) - 1 - b]);
      }
    }
  }
  return bytes;
}

const std::vector<double> kValues = {1.5, -2.25, 0.0, 1e-300, -3.4e38, 7.0};

TEST_F(NpyTest, WritesTheExactBytesNumpyWritesForASmallFloat64Matrix) {
  // NumPy 1.x writes this 128-byte file for np.array([[1.0], [-2.5]]).
  std::string expected = "\x93NUMPY\x01";
  expected += '\0';
  expected += static_cast<char>(118);
  expected += '\0';
  expected += "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }";
  expected += std::string(118 - 59 - 1, ' ') + "\n";
  expected += raw_bytes<double>({1.0, -2.5}, false);

  EXPECT_EQ(encode_npy(Matrix<double>(2, 1, std::vector<double>{1.0, -2.5})), expected);
  EXPECT_EQ(expected.size(), 128u + 16u);
}

TEST_F(NpyTest, RoundTripsEveryDtypeVersionAndByteOrderBitExactly) {
  const Matrix<double> doubles(3, 2, kValues);
  const Matrix<float> floats = doubles.cast<float>();
  for (int version : {1, 2, 3}) {
    for (bool big_endian : {false, true}) {
      const NpyWriteOptions options{version, big_endian};
      const std::string name = "v" + std::to_string(version) + (big_endian ? "be" : "le");

      write_npy(path(name + "_f8.npy"), doubles, options);
      const Matrix<double> back = read_npy(path(name + "_f8.npy"));
      ASSERT_EQ(back.rows(), 3u);
      ASSERT_EQ(back.cols(), 2u);
      EXPECT_EQ(back.values(), doubles.values()) << name;

      write_npy(path(name + "_f4.npy"), floats, options);
      const Matrix<float> back_f = read_npy_float(path(name + "_f4.npy"));
      EXPECT_EQ(back_f.values(), floats.values()) << name;

      const NpyHeader header = parse_npy_header(read_file_bytes(path(name + "_f4.npy")), name);
      EXPECT_EQ(header.major_version, version);
      EXPECT_EQ(header.descr, big_endian ? ">f4" : "<f4");
      EXPECT_EQ(header.data_offset % 64, 0u);
    }
  }
}

TEST_F(NpyTest, VectorsAreWrittenOneDimensionalAndReadBackAsOneColumn) {
  write_npy(path("v.npy"), std::vector<float>{1.0f, 2.0f, 3.0f});
  const NpyHeader header = parse_npy_header(read_file_bytes(path("v.npy")), "v.npy");
  EXPECT_EQ(header.shape, (std::vector<std::uint64_t>{3}));

  const Matrix<double> back = read_npy(path("v.npy"));
  EXPECT_EQ(back.rows(), 3u);
  EXPECT_EQ(back.cols(), 1u);
  EXPECT_EQ(back.values(), (std::vector<double>{1.0, 2.0, 3.0}));
}

TEST_F(NpyTest, ReadsHandMadeVersion2And3FilesInBothByteOrders) {
  for (int version : {2, 3}) {
    for (bool big : {false, true}) {
      const std::string descr = big ? ">f8" : "<f8";
      const std::string bytes =
          hand_made(version, "{'shape': (2, 3), 'fortran_order': False, 'descr': '" + descr + "'}",
                    raw_bytes(kValues, big));
      EXPECT_EQ(decode_npy(bytes, "hand.npy").values(), kValues) << version << big;
    }
  }
}

TEST_F(NpyTest, ReadsBigEndianFloat32AndConvertsToDouble) {
  const std::vector<float> values = {0.5f, -1.25f, 3.0f, 1e30f};
  const std::string bytes =
      hand_made(1, "{\"descr\": \">f4\", \"fortran_order\": False, \"shape\": (4,)}",
                raw_bytes(values, true));
  const Matrix<double> m = decode_npy(bytes, "be.npy");
  ASSERT_EQ(m.rows(), 4u);
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(m(i, 0), double(values[i]));
}

TEST_F(NpyTest, ReadsIntegerArraysOfEverySizeAsExactValues) {
  const std::vector<std::int16_t> i2 = {-300, 7, 32767, -32768};
  EXPECT_EQ(decode_npy(hand_made(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (2, 2)}",
                                 raw_bytes(i2, true)),
                       "i2.npy")
                .values(),
            (std::vector<double>{-300, 7, 32767, -32768}));

  const std::vector<std::uint8_t> u1 = {0, 255, 17};
  EXPECT_EQ(decode_npy(hand_made(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,)}",
                                 raw_bytes(u1, false)),
                       "u1.npy")
                .values(),
            (std::vector<double>{0, 255, 17}));

  const std::vector<std::int64_t> i8 = {-(std::int64_t(1) << 40), 5};
  EXPECT_EQ(decode_npy(hand_made(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2)}",
                                 raw_bytes(i8, false)),
                       "i8.npy")
                .values(),
            (std::vector<double>{-1099511627776.0, 5}));
}

TEST_F(NpyTest, ReadsEmptyArraysAndPython2LongShapes) {
  const Matrix<double> empty = decode_npy(
      hand_made(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4)}", ""), "empty.npy");
  EXPECT_EQ(empty.rows(), 0u);
  EXPECT_EQ(empty.cols(), 4u);

  const Matrix<double> old =
      decode_npy(hand_made(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1L, 1L), }",
                           raw_bytes<double>({2.0}, false)),
                 "old.npy");
  EXPECT_EQ(old.values(), (std::vector<double>{2.0}));
}

TEST_F(NpyTest, RejectsBadMagicNamingTheFile) {
  const std::string message = decode_error("{\"not\": \"npy\"}");
  EXPECT_NE(message.find("bad.npy"), std::string::npos) << message;
  EXPECT_NE(message.find("not a NumPy .npy file"), std::string::npos) << message;
  EXPECT_NE(decode_error("").find("not a NumPy .npy file"), std::string::npos);
}

TEST_F(NpyTest, RejectsUnknownFormatVersionSayingWhichVersions) {
  std::string bytes = encode_npy(Matrix<double>(1, 1));
  bytes[6] = 4;
  const std::string message = decode_error(bytes);
  EXPECT_NE(message.find("version 4.0 is not supported"), std::string::npos) << message;
  EXPECT_NE(message.find("1.0, 2.0 and 3.0"), std::string::npos) << message;
}

TEST_F(NpyTest, RejectsTruncatedDataSayingHowManyBytesAreMissing) {
  const std::string bytes = encode_npy(Matrix<double>(3, 2, kValues));
  const std::string message = decode_error(bytes.substr(0, bytes.size() - 5));
  EXPECT_NE(message.find("bad.npy: truncated .npy file"), std::string::npos) << message;
  EXPECT_NE(message.find("needs 48 bytes of data but the file holds 43"), std::string::npos)
      << message;
}

TEST_F(NpyTest, RejectsAFileCutInsideItsHeader) {
  const std::string bytes = encode_npy(Matrix<double>(3, 2, kValues));
  EXPECT_NE(decode_error(bytes.substr(0, 9)).find("ends inside the header length"),
            std::string::npos);
  EXPECT_NE(decode_error(bytes.substr(0, 40)).find("truncated .npy file: the header says"),
            std::string::npos);
}

TEST_F(NpyTest, RejectsExtraBytesAfterTheData) {
  const std::string message = decode_error(encode_npy(Matrix<double>(1, 1)) + "xyz");
  EXPECT_NE(message.find("3 unexpected bytes"), std::string::npos) << message;
}

TEST_F(NpyTest, RejectsFortranOrderWithAHowToFix) {
  const std::string message = decode_error(hand_made(
      1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2)}", raw_bytes(kValues, false)));
  EXPECT_NE(message.find("Fortran (column-major) order"), std::string::npos) << message;
  EXPECT_NE(message.find("ascontiguousarray"), std::string::npos) << message;
}

TEST_F(NpyTest, RejectsArraysWithZeroOrMoreThanTwoDimensions) {
  const std::string three =
      decode_error(hand_made(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3, 2)}",
                             raw_bytes(kValues, false)));
  EXPECT_NE(three.find("shape (1, 3, 2); expected a 1-D or 2-D array"), std::string::npos) << three;
  const std::string scalar = decode_error(hand_made(
      1, "{'descr': '<f8', 'fortran_order': False, 'shape': ()}", raw_bytes<double>({1}, false)));
  EXPECT_NE(scalar.find("shape ()"), std::string::npos) << scalar;
}

TEST_F(NpyTest, RejectsUnsupportedAndStructuredDtypesByName) {
  const std::string half =
      decode_error(hand_made(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,)}", "ab"));
  EXPECT_NE(half.find("unsupported .npy dtype '<f2'"), std::string::npos) << half;
  const std::string complex =
      decode_error(hand_made(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (0,)}", ""));
  EXPECT_NE(complex.find("'<c16'"), std::string::npos) << complex;
  const std::string record = decode_error(hand_made(
      1, "{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (0,)}", ""));
  EXPECT_NE(record.find("structured .npy arrays"), std::string::npos) << record;
}

TEST_F(NpyTest, RejectsMalformedHeadersNamingTheProblem) {
  const std::string missing =
      decode_error(hand_made(1, "{'descr': '<f8', 'shape': (1,)}", raw_bytes<double>({1}, false)));
  EXPECT_NE(missing.find("no 'fortran_order' entry"), std::string::npos) << missing;
  const std::string syntax =
      decode_error(hand_made(1, "{'descr': '<f8' 'fortran_order': False}", ""));
  EXPECT_NE(syntax.find("bad .npy header: expected ',' or '}'"), std::string::npos) << syntax;
  const std::string wrong_type =
      decode_error(hand_made(1, "{'descr': '<f8', 'fortran_order': 'no', 'shape': (1,)}", ""));
  EXPECT_NE(wrong_type.find("'fortran_order' has the wrong type"), std::string::npos) << wrong_type;
}

TEST_F(NpyTest, MissingFilesAndFoldersAreFileErrorsNamingThePath) {
  try {
    read_npy(path("absent.npy"));
    FAIL() << "no error";
  } catch (const FileError& error) {
    EXPECT_NE(std::string(error.what()).find(path("absent.npy")), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("No such file"), std::string::npos);
  }
  EXPECT_THROW(read_npy(dir_), FileError);
}

TEST_F(NpyTest, AFailedWriteLeavesNoFileAndNoTemporaryBehind) {
  // A missing folder: nothing can be created.
  EXPECT_THROW(write_npy(path("missing/x.npy"), Matrix<float>(2, 2)), FileError);

  // A folder in the way: the temporary is written, the rename fails, the temporary goes.
  ASSERT_EQ(::mkdir(path("taken.npy").c_str(), 0755), 0);
  try {
    write_npy(path("taken.npy"), Matrix<float>(2, 2));
    FAIL() << "no error";
  } catch (const FileError& error) {
    EXPECT_NE(std::string(error.what()).find(path("taken.npy")), std::string::npos);
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"taken.npy"});
}

TEST_F(NpyTest, AtomicWritesReplaceAnExistingFileWhole) {
  write_file_atomically(path("f.txt"), "first version, longer");
  write_file_atomically(path("f.txt"), "second");
  EXPECT_EQ(read_file_bytes(path("f.txt")), "second");
  EXPECT_EQ(listing(), std::vector<std::string>{"f.txt"});
}

TEST_F(NpyTest, RegisteredPathsAreRemovedAndEndedRegistrationsAreNot) {
  // A folder with more files than one directory listing buffer holds.
  ASSERT_EQ(::mkdir(path("run").c_str(), 0755), 0);
  for (int i = 0; i < 600; ++i) {
    write_file_atomically(path("run/file-with-a-longish-name-" + std::to_string(i)), "x");
  }
  write_file_atomically(path("partial.tmp"), "half");
  write_file_atomically(path("finished.npy"), "whole");
  write_file_atomically(path("unrelated.txt"), "kept");

  { const RemovedOnSignal finished(path("finished.npy"), RemovedOnSignal::Kind::kFile); }
  const RemovedOnSignal run(path("run"), RemovedOnSignal::Kind::kFolder);
  const RemovedOnSignal partial(path("partial.tmp"), RemovedOnSignal::Kind::kFile);
  const RemovedOnSignal absent(path("never-made"), RemovedOnSignal::Kind::kFile);
  remove_registered_paths();

  EXPECT_EQ(listing(), (std::vector<std::string>{"finished.npy", "unrelated.txt"}));
}

TEST_F(NpyTest, RegistrationsBeyondTheTableOrTooLongAreLeftAloneWithoutErrors) {
  std::vector<std::unique_ptr<RemovedOnSignal>> many;
  for (int i = 0; i < 100; ++i) {
    write_file_atomically(path("f" + std::to_string(i)), "x");
    many.push_back(std::make_unique<RemovedOnSignal>(path("f" + std::to_string(i)),
                                                     RemovedOnSignal::Kind::kFile));
  }
  const RemovedOnSignal too_long(std::string(100000, 'a'), RemovedOnSignal::Kind::kFile);
  remove_registered_paths();

  // The table holds 64 paths: those were removed, the rest stayed.
  EXPECT_EQ(listing().size(), 100u - 64u);
  many.clear();

  // Ended registrations free their slots for new ones.
  write_file_atomically(path("late"), "x");
  const RemovedOnSignal late(path("late"), RemovedOnSignal::Kind::kFile);
  remove_registered_paths();
  EXPECT_EQ(listing().size(), 100u - 64u);
}

TEST_F(NpyTest, WritesVersion1ByDefaultAndRefusesUnknownVersions) {
  EXPECT_EQ(parse_npy_header(encode_npy(Matrix<float>(1, 1)), "x").major_version, 1);
  EXPECT_THROW(encode_npy(Matrix<float>(1, 1), NpyWriteOptions{4, false}), InvalidArgument);
}

TEST_F(NpyTest, NonFiniteValuesRoundTripUnchanged) {
  const std::vector<double> odd = {std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::denorm_min()};
  const Matrix<double> back = decode_npy(encode_npy(odd), "odd.npy");
  EXPECT_EQ(back.values(), odd);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(decode_npy(encode_npy(std::vector<double>{nan}), "n").values()[0]));
}

}  // namespace
}  // namespace nfcal
