// NumPy .npy files: the array format most flow and density-estimation code exchanges data in.
//
// Reading accepts format versions 1.0, 2.0 and 3.0, little- and big-endian float32 and float64
// ('<f4', '>f4', '<f8', '>f8') and, converted to floating point, the plain integer types
// ('i1'..'i8', 'u1'..'u8', either byte order). Arrays must be in C order, with one or two
// dimensions: a 1-D array of n values reads as an (n, 1) matrix, one value per row, which is
// how nfcal writes per-row results such as log densities. Writing produces version 1.0 (2.0
// when the header would not fit), little-endian, C order; docs/file-formats.md has the details.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

namespace nfcal {

/// What an .npy header says about its array.
struct NpyHeader {
  int major_version = 1;  // 1, 2 or 3
  int minor_version = 0;
  std::string descr;  // the dtype as written, e.g. "<f8"
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;  // empty for a 0-d array
  std::size_t data_offset = 0;       // bytes before the first value
};

/// How encode_npy() and write_npy() lay out a file. The defaults are what NumPy itself
/// writes; the other choices exist so files of every supported kind can be produced.
struct NpyWriteOptions {
  int major_version = 0;    // 0: 1 when the header fits a 16-bit length, else 2; or 1, 2, 3
  bool big_endian = false;  // write '>f4'/'>f8' instead of '<f4'/'<f8'
};

/// Parses the header at the start of `bytes` (the whole file, or at least its header).
/// `source_name` names the file in messages. Throws FileError when the magic bytes, the
/// version or the header dictionary are wrong, naming which.
NpyHeader parse_npy_header(const std::string& bytes, const std::string& source_name);

/// Decodes a whole .npy file held in `bytes` into a matrix of doubles (a 1-D array becomes one
/// column). Throws FileError on a bad magic, version or header, an unsupported dtype, Fortran
/// order, or data shorter or longer than the shape says; DataError when the array has zero or
/// more than two dimensions. Every message starts with `source_name`.
Matrix<double> decode_npy(const std::string& bytes, const std::string& source_name);
/// The same, converting to float (values beyond float's range become infinities).
Matrix<float> decode_npy_float(const std::string& bytes, const std::string& source_name);

/// Reads the .npy file at `path` (see decode_npy; FileError also when it cannot be opened).
///
///     nfcal::Matrix<double> x = nfcal::read_npy("train.npy");  // (rows, columns)
Matrix<double> read_npy(const std::string& path);
/// Reads the .npy file at `path` as float32 values.
Matrix<float> read_npy_float(const std::string& path);

/// The bytes of an .npy file holding `m` as a 2-D array of shape (rows, cols).
std::string encode_npy(const Matrix<float>& m, const NpyWriteOptions& options = {});
std::string encode_npy(const Matrix<double>& m, const NpyWriteOptions& options = {});
/// The bytes of an .npy file holding `v` as a 1-D array of shape (n,).
std::string encode_npy(const std::vector<float>& v, const NpyWriteOptions& options = {});
std::string encode_npy(const std::vector<double>& v, const NpyWriteOptions& options = {});

/// Writes `m` (shape (rows, cols)) or `v` (shape (n,)) to `path` atomically: a file that
/// cannot be completely written is not left behind. Throws FileError naming `path` when the
/// folder is missing or not writable, and InvalidArgument for a bad options.major_version.
void write_npy(const std::string& path, const Matrix<float>& m,
               const NpyWriteOptions& options = {});
void write_npy(const std::string& path, const Matrix<double>& m,
               const NpyWriteOptions& options = {});
void write_npy(const std::string& path, const std::vector<float>& v,
               const NpyWriteOptions& options = {});
void write_npy(const std::string& path, const std::vector<double>& v,
               const NpyWriteOptions& options = {});

}  // namespace nfcal
