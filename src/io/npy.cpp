// NumPy .npy reading and writing. The header is a Python dict literal; a small parser reads
// the subset NumPy writes (strings, True/False, tuples of integers) and names what is wrong.
#include "nfcal/npy.hpp"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"

namespace nfcal {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;
constexpr std::size_t kAlignment = 64;

// True on little-endian hosts, where '<' data needs no swapping.
bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// --- The header dictionary ------------------------------------------------------------------

// One value of the header dict: a string, a bool, a tuple of integers, or something else
// (a list, as in structured dtypes), kept only to be rejected by name.
struct HeaderValue {
  enum class Type { kString, kBool, kTuple, kOther } type = Type::kOther;
  std::string text;
  bool flag = false;
  std::vector<std::uint64_t> numbers;
};

// A cursor over the header text that throws FileError with the file's name on bad syntax.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  // Reads the whole `{key: value, ...}` literal.
  std::map<std::string, HeaderValue> parse_dict() {
    std::map<std::string, HeaderValue> dict;
    expect('{');
    while (true) {
      skip_spaces();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      dict[key] = parse_value();
      skip_spaces();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    return dict;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_spaces() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw FileError(source_ + ": bad .npy header: " + what + " at character " +
                    std::to_string(pos_) + " of \"" + printable() + "\"");
  }

  // The header with its trailing padding cut, for messages.
  std::string printable() const {
    std::string shown = text_.substr(0, 200);
    while (!shown.empty() && std::isspace(static_cast<unsigned char>(shown.back()))) {
      shown.pop_back();
    }
    return shown;
  }

  void expect(char wanted) {
    skip_spaces();
    if (peek() != wanted) fail(std::string("expected '") + wanted + "'");
    ++pos_;
  }

  // A Python string literal in single or double quotes (no escapes occur in npy headers).
  std::string parse_string() {
    skip_spaces();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted key or string");
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return value;
  }

  // A non-negative integer, with the 'L' suffix that Python 2 wrote accepted.
  std::uint64_t parse_integer() {
    skip_spaces();
    if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
    std::uint64_t value = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      const std::uint64_t digit = static_cast<std::uint64_t>(peek() - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
        fail("dimension too large");
      }
      value = value * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L') ++pos_;
    return value;
  }

  // `(a, b, ...)`, `(a,)` or `()`.
  std::vector<std::uint64_t> parse_tuple() {
    std::vector<std::uint64_t> numbers;
    expect('(');
    while (true) {
      skip_spaces();
      if (peek() == ')') break;
      numbers.push_back(parse_integer());
      skip_spaces();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++pos_;
    return numbers;
  }

  // Skips a bracketed literal such as a structured dtype's list of fields.
  void skip_bracketed() {
    int depth = 0;
    do {
      const char c = peek();
      if (c == '\0') fail("unbalanced brackets");
      if (c == '[' || c == '(' || c == '{') ++depth;
      if (c == ']' || c == ')' || c == '}') --depth;
      ++pos_;
    } while (depth > 0);
  }

  HeaderValue parse_value() {
    HeaderValue value;
    skip_spaces();
    const char c = peek();
    if (c == '\'' || c == '"') {
      value.type = HeaderValue::Type::kString;
      value.text = parse_string();
    } else if (text_.compare(pos_, 4, "True") == 0 || text_.compare(pos_, 5, "False") == 0) {
      value.type = HeaderValue::Type::kBool;
      value.flag = text_[pos_] == 'T';
      pos_ += value.flag ? 4 : 5;
    } else if (c == '(') {
      value.type = HeaderValue::Type::kTuple;
      value.numbers = parse_tuple();
    } else if (c == '[' || c == '{') {
      skip_bracketed();
    } else {
      fail("unexpected value");
    }
    return value;
  }

  const std::string& text_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

// Looks up a required key of the given type, naming it when it is missing or mistyped.
const HeaderValue& require_key(const std::map<std::string, HeaderValue>& dict,
                               const std::string& key, HeaderValue::Type type,
                               const std::string& source) {
  const auto found = dict.find(key);
  if (found == dict.end()) {
    throw FileError(source + ": bad .npy header: no '" + key + "' entry");
  }
  if (found->second.type != type) {
    if (key == "descr") {
      throw FileError(source +
                      ": structured .npy arrays (record dtypes) are not supported; "
                      "save a plain float32 or float64 array");
    }
    throw FileError(source + ": bad .npy header: '" + key + "' has the wrong type");
  }
  return found->second;
}

// --- The dtype ------------------------------------------------------------------------------

// A decoded descr such as '>f8': kind 'f', 'i' or 'u', item size in bytes, byte order.
struct Dtype {
  char kind = 'f';
  std::size_t size = 8;
  bool big_endian = false;
};

Dtype parse_dtype(const std::string& descr, const std::string& source) {
  const std::string unsupported = source + ": unsupported .npy dtype '" + descr +
                                  "' (nfcal reads float32, float64 and integer arrays)";
  if (descr.size() < 3) throw FileError(unsupported);

  // Byte order: '<' little, '>' big, '=' native, '|' not applicable (1-byte types).
  Dtype dtype;
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '=' && order != '|') throw FileError(unsupported);
  dtype.big_endian = order == '>' || (order == '=' && !host_is_little_endian());
  dtype.kind = descr[1];
  const std::string digits = descr.substr(2);
  if (digits.find_first_not_of("0123456789") != std::string::npos) throw FileError(unsupported);
  dtype.size = static_cast<std::size_t>(std::stoul(digits));

  // Only the element types that convert to floating point without surprises.
  const bool is_float = dtype.kind == 'f' && (dtype.size == 4 || dtype.size == 8);
  const bool is_integer =
      (dtype.kind == 'i' || dtype.kind == 'u') &&
      (dtype.size == 1 || dtype.size == 2 || dtype.size == 4 || dtype.size == 8);
  if (!is_float && !is_integer) throw FileError(unsupported);
  if (order == '|' && dtype.size != 1) throw FileError(unsupported);
  return dtype;
}

// --- Decoding values ------------------------------------------------------------------------

// Converts `count` items of type Source at `data` (possibly byte-swapped) to T.
template <typename Source, typename T>
void convert_items(const char* data, std::size_t count, bool swap, T* out) {
  char item[sizeof(Source)];
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(item, data + i * sizeof(Source), sizeof(Source));
    if (swap) {
      for (std::size_t b = 0; b < sizeof(Source) / 2; ++b) {
        std::swap(item[b], item[sizeof(Source) - 1 - b]);
      }
    }
    Source value;
    std::memcpy(&value, item, sizeof(Source));
    out[i] = static_cast<T>(value);
  }
}

template <typename T>
void convert_all(const Dtype& dtype, const char* data, std::size_t count, T* out) {
  const bool swap = dtype.big_endian == host_is_little_endian() && dtype.size > 1;
  switch (dtype.kind) {
    case 'f':
      if (dtype.size == 4) return convert_items<float>(data, count, swap, out);
      return convert_items<double>(data, count, swap, out);
    case 'i':
      if (dtype.size == 1) return convert_items<std::int8_t>(data, count, swap, out);
      if (dtype.size == 2) return convert_items<std::int16_t>(data, count, swap, out);
      if (dtype.size == 4) return convert_items<std::int32_t>(data, count, swap, out);
      return convert_items<std::int64_t>(data, count, swap, out);
    default:
      if (dtype.size == 1) return convert_items<std::uint8_t>(data, count, swap, out);
      if (dtype.size == 2) return convert_items<std::uint16_t>(data, count, swap, out);
      if (dtype.size == 4) return convert_items<std::uint32_t>(data, count, swap, out);
      return convert_items<std::uint64_t>(data, count, swap, out);
  }
}

// "(3, 2)" or "(5,)", as NumPy prints shapes.
std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

template <typename T>
Matrix<T> decode(const std::string& bytes, const std::string& source) {
  const NpyHeader header = parse_npy_header(bytes, source);
  const Dtype dtype = parse_dtype(header.descr, source);

  // nfcal's matrices are row-major; a Fortran-order file would be silently transposed.
  if (header.fortran_order) {
    throw FileError(source +
                    ": .npy array is in Fortran (column-major) order; save it in C "
                    "order, e.g. numpy.save(path, numpy.ascontiguousarray(x))");
  }
  if (header.shape.empty() || header.shape.size() > 2) {
    throw DataError(source + ": .npy array has shape " + shape_text(header.shape) +
                    "; expected a 1-D or 2-D array (rows, columns)");
  }

  // The data must be exactly as long as the shape says, with overflow-safe arithmetic.
  const std::uint64_t rows = header.shape[0];
  const std::uint64_t cols = header.shape.size() == 2 ? header.shape[1] : 1;
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / dtype.size;
  if (cols != 0 && rows > limit / cols) {
    throw FileError(source + ": .npy shape " + shape_text(header.shape) + " is too large");
  }
  const std::uint64_t needed = rows * cols * dtype.size;
  const std::uint64_t available = bytes.size() - header.data_offset;
  if (available < needed) {
    throw FileError(source + ": truncated .npy file: shape " + shape_text(header.shape) + " of '" +
                    header.descr + "' needs " + std::to_string(needed) +
                    " bytes of data but the file holds " + std::to_string(available));
  }
  if (available > needed) {
    throw FileError(source + ": .npy file has " + std::to_string(available - needed) +
                    " unexpected bytes after the " + std::to_string(needed) +
                    " bytes of data its shape " + shape_text(header.shape) + " needs");
  }

  Matrix<T> m(static_cast<std::size_t>(rows), static_cast<std::size_t>(cols));
  convert_all(dtype, bytes.data() + header.data_offset, m.size(), m.data());
  return m;
}

// --- Encoding -------------------------------------------------------------------------------

template <typename T>
std::string encode(const T* values, const std::vector<std::uint64_t>& shape,
                   const NpyWriteOptions& options) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "float or double");

  // The dict NumPy itself writes, padded with spaces and ended by '\n' so the data that
  // follows starts at a multiple of 64 bytes.
  const std::string descr =
      std::string(options.big_endian ? ">" : "<") + "f" + std::to_string(sizeof(T));
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  const auto padded_length = [&dict](int major) {
    const std::size_t prefix = kMagicSize + 2 + (major == 1 ? 2 : 4);
    return (prefix + dict.size() + 1 + kAlignment - 1) / kAlignment * kAlignment - prefix;
  };
  int major = options.major_version;
  if (major == 0) major = padded_length(1) <= 65535 ? 1 : 2;
  if (major < 1 || major > 3) {
    throw InvalidArgument("npy version " + std::to_string(major) + ": expected 1, 2 or 3");
  }
  const std::size_t length = padded_length(major);
  if (major == 1 && length > 65535) {
    throw InvalidArgument("npy version 1.0 cannot hold a header of " + std::to_string(length) +
                          " bytes; use version 2");
  }
  dict.append(length - dict.size() - 1, ' ');
  dict.push_back('\n');

  // Magic, version, little-endian header length, header, then the values.
  std::string bytes(kMagic, kMagicSize);
  bytes.push_back(static_cast<char>(major));
  bytes.push_back('\0');
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  for (std::size_t b = 0; b < length_bytes; ++b) {
    bytes.push_back(static_cast<char>((dict.size() >> (8 * b)) & 0xFF));
  }
  bytes += dict;

  std::size_t count = 1;
  for (const std::uint64_t d : shape) count *= static_cast<std::size_t>(d);
  const std::size_t start = bytes.size();
  bytes.resize(start + count * sizeof(T));
  std::memcpy(&bytes[start], values, count * sizeof(T));
  if (options.big_endian == host_is_little_endian()) {
    for (std::size_t i = 0; i < count; ++i) {
      char* item = &bytes[start + i * sizeof(T)];
      for (std::size_t b = 0; b < sizeof(T) / 2; ++b) std::swap(item[b], item[sizeof(T) - 1 - b]);
    }
  }
  return bytes;
}

}  // namespace

NpyHeader parse_npy_header(const std::string& bytes, const std::string& source_name) {
  // Magic and version.
  if (bytes.size() < kMagicSize + 2 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    throw FileError(source_name +
                    ": not a NumPy .npy file (it does not start with the "
                    "\\x93NUMPY magic bytes)");
  }
  NpyHeader header;
  header.major_version = static_cast<unsigned char>(bytes[6]);
  header.minor_version = static_cast<unsigned char>(bytes[7]);
  if (header.major_version < 1 || header.major_version > 3 || header.minor_version != 0) {
    throw FileError(source_name + ": .npy format version " + std::to_string(header.major_version) +
                    "." + std::to_string(header.minor_version) +
                    " is not supported (nfcal reads 1.0, 2.0 and 3.0)");
  }

  // Header length: 2 bytes in version 1, 4 in later versions, little-endian.
  const std::size_t length_bytes = header.major_version == 1 ? 2 : 4;
  if (bytes.size() < kMagicSize + 2 + length_bytes) {
    throw FileError(source_name + ": truncated .npy file: it ends inside the header length");
  }
  std::uint64_t length = 0;
  for (std::size_t b = 0; b < length_bytes; ++b) {
    length |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[8 + b])) << (8 * b);
  }
  header.data_offset = kMagicSize + 2 + length_bytes + static_cast<std::size_t>(length);
  if (bytes.size() < header.data_offset) {
    throw FileError(source_name + ": truncated .npy file: the header says it is " +
                    std::to_string(length) + " bytes long but the file ends after " +
                    std::to_string(bytes.size() - kMagicSize - 2 - length_bytes));
  }

  // The dict: descr, fortran_order and shape are required; other keys are ignored.
  const std::string text = bytes.substr(kMagicSize + 2 + length_bytes, length);
  const auto dict = HeaderParser(text, source_name).parse_dict();
  header.descr = require_key(dict, "descr", HeaderValue::Type::kString, source_name).text;
  header.fortran_order =
      require_key(dict, "fortran_order", HeaderValue::Type::kBool, source_name).flag;
  header.shape = require_key(dict, "shape", HeaderValue::Type::kTuple, source_name).numbers;
  return header;
}

Matrix<double> decode_npy(const std::string& bytes, const std::string& source_name) {
  return decode<double>(bytes, source_name);
}

Matrix<float> decode_npy_float(const std::string& bytes, const std::string& source_name) {
  return decode<float>(bytes, source_name);
}

Matrix<double> read_npy(const std::string& path) { return decode_npy(read_file_bytes(path), path); }

Matrix<float> read_npy_float(const std::string& path) {
  return decode_npy_float(read_file_bytes(path), path);
}

std::string encode_npy(const Matrix<float>& m, const NpyWriteOptions& options) {
  return encode(m.data(), {m.rows(), m.cols()}, options);
}

std::string encode_npy(const Matrix<double>& m, const NpyWriteOptions& options) {
  return encode(m.data(), {m.rows(), m.cols()}, options);
}

std::string encode_npy(const std::vector<float>& v, const NpyWriteOptions& options) {
  return encode(v.data(), {v.size()}, options);
}

std::string encode_npy(const std::vector<double>& v, const NpyWriteOptions& options) {
  return encode(v.data(), {v.size()}, options);
}

void write_npy(const std::string& path, const Matrix<float>& m, const NpyWriteOptions& options) {
  write_file_atomically(path, encode_npy(m, options));
}

void write_npy(const std::string& path, const Matrix<double>& m, const NpyWriteOptions& options) {
  write_file_atomically(path, encode_npy(m, options));
}

void write_npy(const std::string& path, const std::vector<float>& v,
               const NpyWriteOptions& options) {
  write_file_atomically(path, encode_npy(v, options));
}

void write_npy(const std::string& path, const std::vector<double>& v,
               const NpyWriteOptions& options) {
  write_file_atomically(path, encode_npy(v, options));
}

}  // namespace nfcal
