// CSV reading with header detection and precise error positions, and round-trip-exact writing.
#include "nfcal/csv.hpp"

#include <charconv>
#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"

namespace nfcal {
namespace {

// Cuts spaces, tabs and a trailing carriage return from both ends.
std::string trim(const std::string& text) {
  const std::size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const std::size_t last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

// The cells of one line, trimmed.
std::vector<std::string> split_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    cells.push_back(trim(line.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return cells;
}

// Parses a whole cell as a double: errc() on success, result_out_of_range for a number beyond
// double's range, invalid_argument for anything else.
std::errc parse_cell(const std::string& cell, double* value) {
  if (cell.empty()) return std::errc::invalid_argument;
  const char* begin = cell.data();
  if (*begin == '+') ++begin;  // from_chars does not take a leading plus
  const char* end = cell.data() + cell.size();
  const auto result = std::from_chars(begin, end, *value);
  if (result.ptr != end) return std::errc::invalid_argument;
  return result.ec;
}

// A header cell with surrounding quotes removed.
std::string unquote(const std::string& cell) {
  if (cell.size() >= 2 && (cell.front() == '"' || cell.front() == '\'') &&
      cell.back() == cell.front()) {
    return cell.substr(1, cell.size() - 2);
  }
  return cell;
}

// The shortest text that reads back as exactly `value`.
template <typename T>
void append_number(std::string* out, T value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, result.ptr);
}

template <typename T>
std::string encode(const Matrix<T>& m, const std::vector<std::string>& header) {
  // The header must match the columns and hold nothing that would break the CSV syntax.
  if (!header.empty() && header.size() != m.cols()) {
    throw InvalidArgument("CSV header has " + std::to_string(header.size()) + " names for " +
                          std::to_string(m.cols()) + " columns");
  }
  std::string text;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (header[c].find_first_of(",\"\r\n") != std::string::npos) {
      throw InvalidArgument("CSV header name '" + header[c] +
                            "' holds a comma, quote or line break");
    }
    text += (c > 0 ? "," : "") + header[c];
  }
  if (!header.empty()) text += '\n';

  // One line per row.
  for (std::size_t r = 0; r < m.rows(); ++r) {
    for (std::size_t c = 0; c < m.cols(); ++c) {
      if (c > 0) text += ',';
      append_number(&text, m(r, c));
    }
    text += '\n';
  }
  return text;
}

}  // namespace

Matrix<double> decode_csv(const std::string& text, const std::string& source_name,
                          std::vector<std::string>* header) {
  std::vector<double> values;
  std::vector<std::string> names;
  std::size_t cols = 0;
  std::size_t rows = 0;
  std::size_t first_line = 0;  // the line that fixed the column count
  std::size_t line_number = 0;
  std::size_t start = 0;

  while (start < text.size()) {
    // Next line; blank ones are skipped but still counted, so positions match an editor's.
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (trim(line).empty()) continue;
    const std::vector<std::string> cells = split_cells(line);

    // The first non-blank line is a header when any cell is not a number (a number out of
    // range is still a number, reported below).
    if (first_line == 0) {
      first_line = line_number;
      cols = cells.size();
      double ignored = 0;
      bool numeric = true;
      for (const std::string& cell : cells) {
        numeric = numeric && parse_cell(cell, &ignored) != std::errc::invalid_argument;
      }
      if (!numeric) {
        for (const std::string& cell : cells) names.push_back(unquote(cell));
        continue;
      }
    }

    // Every row has the first row's width and numbers only.
    const std::string where = source_name + ":" + std::to_string(line_number);
    if (cells.size() != cols) {
      throw DataError(where + ": " + std::to_string(cells.size()) + " cells, but line " +
                      std::to_string(first_line) + " has " + std::to_string(cols));
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
      double value = 0;
      const std::errc status = parse_cell(cells[c], &value);
      if (status != std::errc()) {
        const std::string problem = cells[c].empty() ? std::string("empty cell")
                                    : status == std::errc::result_out_of_range
                                        ? "'" + cells[c] + "' is out of range"
                                        : "'" + cells[c] + "' is not a number";
        throw DataError(where + ":" + std::to_string(c + 1) + ": " + problem);
      }
      values.push_back(value);
    }
    ++rows;
  }

  if (header != nullptr) *header = names;
  return Matrix<double>(rows, cols, std::move(values));
}

Matrix<double> read_csv(const std::string& path, std::vector<std::string>* header) {
  return decode_csv(read_file_bytes(path), path, header);
}

std::string encode_csv(const Matrix<double>& m, const std::vector<std::string>& header) {
  return encode(m, header);
}

std::string encode_csv(const Matrix<float>& m, const std::vector<std::string>& header) {
  return encode(m, header);
}

void write_csv(const std::string& path, const Matrix<double>& m,
               const std::vector<std::string>& header) {
  write_file_atomically(path, encode_csv(m, header));
}

void write_csv(const std::string& path, const Matrix<float>& m,
               const std::vector<std::string>& header) {
  write_file_atomically(path, encode_csv(m, header));
}

}  // namespace nfcal
