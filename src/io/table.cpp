// Tables by file extension: .npy or .csv.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "nfcal/csv.hpp"
#include "nfcal/error.hpp"
#include "nfcal/npy.hpp"

namespace nfcal {
namespace {

enum class TableFormat { kNpy, kCsv };

// The path's extension in lower case, with its dot ("" when there is none).
std::string extension_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string extension = path.substr(dot);
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

TableFormat format_of(const std::string& path) {
  const std::string extension = extension_of(path);
  if (extension == ".npy") return TableFormat::kNpy;
  if (extension == ".csv") return TableFormat::kCsv;
  throw FileError(path + ": unsupported file type" +
                  (extension.empty() ? std::string(" (no extension)") : " '" + extension + "'") +
                  "; use .npy or .csv");
}

template <typename T>
void write_matrix(const std::string& path, const Matrix<T>& m,
                  const std::vector<std::string>& header) {
  if (format_of(path) == TableFormat::kNpy) {
    write_npy(path, m);
  } else {
    write_csv(path, m, header);
  }
}

template <typename T>
void write_vector(const std::string& path, const std::vector<T>& v,
                  const std::string& column_name) {
  if (format_of(path) == TableFormat::kNpy) {
    write_npy(path, v);
  } else {
    const std::vector<std::string> header =
        column_name.empty() ? std::vector<std::string>{} : std::vector<std::string>{column_name};
    write_csv(path, Matrix<T>(v.size(), 1, v), header);
  }
}

}  // namespace

bool is_table_path(const std::string& path) {
  const std::string extension = extension_of(path);
  return extension == ".npy" || extension == ".csv";
}

Matrix<double> read_table(const std::string& path) {
  if (format_of(path) == TableFormat::kNpy) return read_npy(path);
  return read_csv(path);
}

Matrix<float> read_table_float(const std::string& path) {
  if (format_of(path) == TableFormat::kNpy) return read_npy_float(path);
  return read_csv(path).cast<float>();
}

void write_table(const std::string& path, const Matrix<double>& m,
                 const std::vector<std::string>& header) {
  write_matrix(path, m, header);
}

void write_table(const std::string& path, const Matrix<float>& m,
                 const std::vector<std::string>& header) {
  write_matrix(path, m, header);
}

void write_table(const std::string& path, const std::vector<double>& v,
                 const std::string& column_name) {
  write_vector(path, v, column_name);
}

void write_table(const std::string& path, const std::vector<float>& v,
                 const std::string& column_name) {
  write_vector(path, v, column_name);
}

}  // namespace nfcal
