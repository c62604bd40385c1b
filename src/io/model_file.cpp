// The model file container: framing, checksum and header, with one error kind per failure.
#include "nfcal/model_file.hpp"

#include <zlib.h>

#include <cstdint>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"
#include "nfcal/version.hpp"

#include "io/byte_order.hpp"

namespace nfcal {
namespace {

constexpr char kMagic[] = "NFCALMDL";
constexpr std::size_t kMagicSize = 8;
constexpr std::size_t kMaxNameLength = 4096;

using Kind = ModelFormatError::Kind;

// zlib's CRC-32 of a byte range.
std::uint32_t crc32_of(const char* data, std::size_t size) {
  const uLong start = ::crc32_z(0L, Z_NULL, 0);
  return static_cast<std::uint32_t>(
      ::crc32_z(start, reinterpret_cast<const Bytef*>(data), static_cast<z_size_t>(size)));
}

// Bounds-checked reads through the file's framing. Running past the end means the file was
// cut short: the message says how far the layout reaches and how much is there.
class Reader {
 public:
  Reader(const std::string& bytes, std::size_t end, const std::string& source)
      : bytes_(bytes), end_(end), source_(source) {}

  std::size_t position() const { return pos_; }

  // Makes sure `count` more bytes exist before the checksum, or throws kTruncated.
  void need(std::uint64_t count, const std::string& what) const {
    if (count > end_ - pos_) {
      const std::uint64_t expected = pos_ + count + 4;  // the checksum follows
      throw ModelFormatError(Kind::kTruncated, source_ + ": truncated model file: " + what +
                                                   " needs at least " + std::to_string(expected) +
                                                   " bytes but the file has " +
                                                   std::to_string(bytes_.size()));
    }
  }

  template <typename T>
  T integer(const std::string& what) {
    need(sizeof(T), what);
    T value = 0;
    io::read_little_endian(bytes_.data() + pos_, 1, &value);
    pos_ += sizeof(T);
    return value;
  }

  std::string take(std::uint64_t count, const std::string& what) {
    need(count, what);
    std::string out = bytes_.substr(pos_, static_cast<std::size_t>(count));
    pos_ += static_cast<std::size_t>(count);
    return out;
  }

 private:
  const std::string& bytes_;
  std::size_t end_;  // where the checksum starts
  const std::string& source_;
  std::size_t pos_ = 0;
};

// Magic and version: the checks that tell "not a model" and "another version" apart.
void check_magic_and_version(const std::string& bytes, const std::string& source) {
  if (bytes.empty()) {
    throw ModelFormatError(Kind::kNotAModel, source + ": not an nfcal model file (it is empty)");
  }
  if (bytes.size() < kMagicSize || bytes.compare(0, kMagicSize, kMagic) != 0) {
    throw ModelFormatError(
        Kind::kNotAModel,
        source + ": not an nfcal model file (it does not start with " + "\"NFCALMDL\")");
  }
  if (bytes.size() < kMagicSize + 4) {
    throw ModelFormatError(Kind::kTruncated,
                           source + ": truncated model file: it ends inside the format version");
  }
  std::uint32_t version = 0;
  io::read_little_endian(bytes.data() + kMagicSize, 1, &version);
  if (version != kModelFormatVersion) {
    throw ModelFormatError(Kind::kUnsupportedVersion,
                           source + ": model file format version " + std::to_string(version) +
                               " is not supported; this build of nfcal " + kVersion +
                               " reads version " + std::to_string(kModelFormatVersion));
  }
}

// Walks header and sections; every length is checked before use.
ModelFile read_layout(const std::string& bytes, const std::string& source) {
  const std::size_t body_end = bytes.size() >= kMagicSize + 4 + 4 ? bytes.size() - 4 : 0;
  if (body_end == 0) {
    throw ModelFormatError(Kind::kTruncated, source + ": truncated model file: only " +
                                                 std::to_string(bytes.size()) + " bytes");
  }
  Reader reader(bytes, body_end, source);
  reader.take(kMagicSize + 4, "the format version");

  ModelFile file;
  file.source = source;
  const auto header_length = reader.integer<std::uint64_t>("the header length");
  file.header_json = reader.take(header_length, "the header");
  const auto count = reader.integer<std::uint32_t>("the section count");
  std::set<std::string> names;
  for (std::uint32_t s = 0; s < count; ++s) {
    const std::string which = "section " + std::to_string(s + 1) + " of " + std::to_string(count);
    const auto name_length = reader.integer<std::uint32_t>(which);
    if (name_length > kMaxNameLength) {
      throw ModelFormatError(Kind::kCorrupted, source + ": corrupted model file: " + which +
                                                   " has a name of " + std::to_string(name_length) +
                                                   " bytes");
    }
    std::string name = reader.take(name_length, which);
    const auto data_length = reader.integer<std::uint64_t>("section '" + name + "'");
    std::string data = reader.take(data_length, "section '" + name + "'");
    if (!names.insert(name).second) {
      throw ModelFormatError(Kind::kCorrupted,
                             source + ": corrupted model file: section '" + name + "' twice");
    }
    file.sections.emplace_back(std::move(name), std::move(data));
  }

  // Bytes between the last section and the checksum mean the framing itself is damaged.
  if (reader.position() != body_end) {
    throw ModelFormatError(Kind::kCorrupted, source + ": corrupted model file: " +
                                                 std::to_string(body_end - reader.position()) +
                                                 " unexpected bytes after the last section");
  }
  return file;
}

// The stored CRC-32 must match the bytes before it.
void check_checksum(const std::string& bytes, const std::string& source) {
  std::uint32_t stored = 0;
  io::read_little_endian(bytes.data() + bytes.size() - 4, 1, &stored);
  const std::uint32_t computed = crc32_of(bytes.data(), bytes.size() - 4);
  if (stored != computed) {
    throw ModelFormatError(Kind::kCorrupted,
                           source + ": corrupted model file: checksum mismatch (stored " +
                               std::to_string(stored) + ", computed " + std::to_string(computed) +
                               ")");
  }
}

// The header must be a JSON object with a string "kind".
std::string read_kind(const std::string& header_json, const std::string& source) {
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_json);
  } catch (const nlohmann::json::exception& error) {
    throw ModelFormatError(Kind::kCorrupted, source + ": corrupted model file: the header is " +
                                                 "not valid JSON (" + error.what() + ")");
  }
  if (!header.is_object() || !header.contains("kind") || !header["kind"].is_string()) {
    throw ModelFormatError(Kind::kCorrupted,
                           source + ": corrupted model file: the header has no \"kind\"");
  }
  return header["kind"].get<std::string>();
}

}  // namespace

const std::string& ModelFile::section(const std::string& name) const {
  for (const auto& entry : sections) {
    if (entry.first == name) return entry.second;
  }
  throw ModelFormatError(Kind::kCorrupted, (source.empty() ? std::string("model file") : source) +
                                               ": no section '" + name + "' in the " + kind +
                                               " model file");
}

bool ModelFile::has_section(const std::string& name) const {
  for (const auto& entry : sections) {
    if (entry.first == name) return true;
  }
  return false;
}

std::string encode_model_file(const ModelFile& file) {
  // The header: the writer's object, plus what every model file says about itself.
  if (file.kind.empty()) throw InvalidArgument("model file: the kind is empty");
  nlohmann::json header = nlohmann::json::object();
  if (!file.header_json.empty()) {
    try {
      header = nlohmann::json::parse(file.header_json);
    } catch (const nlohmann::json::exception& error) {
      throw InvalidArgument(std::string("model file header: not valid JSON (") + error.what() +
                            ")");
    }
    if (!header.is_object()) throw InvalidArgument("model file header: not a JSON object");
  }
  header["kind"] = file.kind;
  header["nfcal_version"] = kVersion;
  const std::string header_text = header.dump();

  // Framing, sections, then the checksum over all of it.
  std::string bytes(kMagic, kMagicSize);
  io::append_little_endian(&bytes, kModelFormatVersion);
  io::append_little_endian(&bytes, static_cast<std::uint64_t>(header_text.size()));
  bytes += header_text;
  io::append_little_endian(&bytes, static_cast<std::uint32_t>(file.sections.size()));
  std::set<std::string> names;
  for (const auto& [name, data] : file.sections) {
    if (!names.insert(name).second) {
      throw InvalidArgument("model file: two sections named '" + name + "'");
    }
    if (name.size() > kMaxNameLength) throw InvalidArgument("model file: section name too long");
    io::append_little_endian(&bytes, static_cast<std::uint32_t>(name.size()));
    bytes += name;
    io::append_little_endian(&bytes, static_cast<std::uint64_t>(data.size()));
    bytes += data;
  }
  io::append_little_endian(&bytes, crc32_of(bytes.data(), bytes.size()));
  return bytes;
}

ModelFile decode_model_file(const std::string& bytes, const std::string& source_name) {
  check_magic_and_version(bytes, source_name);
  ModelFile file = read_layout(bytes, source_name);
  check_checksum(bytes, source_name);
  file.kind = read_kind(file.header_json, source_name);
  return file;
}

void write_model_file(const std::string& path, const ModelFile& file) {
  write_file_atomically(path, encode_model_file(file));
}

ModelFile read_model_file(const std::string& path) {
  return decode_model_file(read_file_bytes(path), path);
}

void require_kind(const ModelFile& file, const std::string& kind) {
  if (file.kind != kind) {
    throw ModelFormatError(Kind::kWrongKind, file.source + ": holds a model of kind '" + file.kind +
                                                 "', expected '" + kind + "'");
  }
}

}  // namespace nfcal
