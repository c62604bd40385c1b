// Comma-separated text tables, and tables chosen by file extension (.npy or .csv).
//
// A CSV file holds one row per line and the same number of comma-separated numbers on every
// line. The first line is a header when any of its cells is not a number. Blank lines are
// skipped, cells may carry surrounding spaces, header cells may be quoted. Numbers are written
// with as many digits as it takes to read back the identical value.
#pragma once

#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

namespace nfcal {

/// Parses CSV text into a matrix of doubles. `header`, when given, receives the column names
/// (empty when the first line is data). `source_name` names the file in messages.
/// Throws DataError "source:line:column: ..." for a non-numeric cell or an empty cell, and
/// "source:line: ..." for a row whose cell count differs from the first row's.
/// NaN and Inf spelled as "nan" or "inf" are read as such; callers reject them with
/// check_rows(), which names the row.
Matrix<double> decode_csv(const std::string& text, const std::string& source_name,
                          std::vector<std::string>* header = nullptr);

/// Reads the CSV file at `path` (see decode_csv; FileError when it cannot be read).
///
///     std::vector<std::string> names;
///     nfcal::Matrix<double> x = nfcal::read_csv("data.csv", &names);
Matrix<double> read_csv(const std::string& path, std::vector<std::string>* header = nullptr);

/// CSV text for `m`, one line per row, with a header line first when `header` is not empty.
/// Throws InvalidArgument when the header has a different number of names than m has columns
/// or a name holds a comma, quote or line break.
std::string encode_csv(const Matrix<double>& m, const std::vector<std::string>& header = {});
std::string encode_csv(const Matrix<float>& m, const std::vector<std::string>& header = {});

/// Writes `m` as CSV to `path` atomically (see encode_csv; FileError naming `path` when it
/// cannot be written).
void write_csv(const std::string& path, const Matrix<double>& m,
               const std::vector<std::string>& header = {});
void write_csv(const std::string& path, const Matrix<float>& m,
               const std::vector<std::string>& header = {});

/// Reads a table from `path`, choosing the format by extension (.npy or .csv, any case).
/// A 1-D .npy array reads as one column. Throws FileError naming the path and the extension
/// for any other extension, plus everything read_npy() and read_csv() throw.
Matrix<double> read_table(const std::string& path);
/// The same, as float32 values.
Matrix<float> read_table_float(const std::string& path);

/// Writes `m` to `path` as .npy (2-D, the matrix's own precision) or .csv (with `header`
/// when not empty), by extension, atomically. Throws FileError for other extensions.
void write_table(const std::string& path, const Matrix<double>& m,
                 const std::vector<std::string>& header = {});
void write_table(const std::string& path, const Matrix<float>& m,
                 const std::vector<std::string>& header = {});
/// Writes one value per row: a 1-D .npy array of shape (n,), or a one-column CSV whose header
/// is `column_name` (no header when it is empty).
void write_table(const std::string& path, const std::vector<double>& v,
                 const std::string& column_name = "");
void write_table(const std::string& path, const std::vector<float>& v,
                 const std::string& column_name = "");

/// True when `path` ends in an extension read_table() and write_table() understand.
bool is_table_path(const std::string& path);

}  // namespace nfcal
