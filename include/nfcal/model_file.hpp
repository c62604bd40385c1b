// nfcal model files: one versioned, self-describing container for flows and calibrated models.
//
// Layout (all integers little-endian):
//
//     "NFCALMDL"                     8 bytes of magic
//     u32 format version             kModelFormatVersion
//     u64 header length, header      UTF-8 JSON object: "kind", "nfcal_version", and whatever
//                                    the writer adds (configuration, tensor shapes, metadata)
//     u32 section count, then per section:
//         u32 name length, name      UTF-8, unique within the file
//         u64 data length, data      raw bytes, laid out as the header describes
//     u32 CRC-32                     zlib's crc32 over every byte before it
//
// Files are written atomically. Reading checks, in this order, the magic, the version, that
// every length fits in the file, the checksum and the JSON, and throws ModelFormatError with
// the kind of failure, so "not a model", "another version", "truncated" and "corrupted" each
// get their own message. docs/file-formats.md describes the sections a flow file holds.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"

namespace nfcal {

/// The container format version this build writes and reads.
inline constexpr std::uint32_t kModelFormatVersion = 1;
/// The kind a flow file carries in its header.
inline constexpr const char* kFlowKind = "flow";

/// The decoded contents of a model file.
struct ModelFile {
  std::string kind;         // what the file holds, e.g. "flow"
  std::string header_json;  // the header, a JSON object; decoding returns it whole, with
                            // "kind" and "nfcal_version" among its keys
  std::vector<std::pair<std::string, std::string>> sections;  // (name, bytes), in file order
  std::string source;  // the file or byte string it came from, for messages (not stored)

  /// The bytes of section `name`. Throws ModelFormatError (kCorrupted) naming the section and
  /// the source when there is no such section.
  const std::string& section(const std::string& name) const;
  /// True when a section called `name` exists.
  bool has_section(const std::string& name) const;
};

/// The bytes of a model file holding `file`. header_json may be empty (treated as {}) and must
/// otherwise be a JSON object; "kind" and "nfcal_version" are set from file.kind and this
/// build. Throws InvalidArgument when kind is empty, header_json is not a JSON object, or two
/// sections share a name.
std::string encode_model_file(const ModelFile& file);

/// Decodes the bytes of a model file; `source_name` names it in messages.
/// Throws ModelFormatError: kNotAModel for an empty or short file or a wrong magic,
/// kUnsupportedVersion naming the file's version and the one this build reads, kTruncated
/// saying how many bytes were expected and how many found, kCorrupted for a checksum mismatch,
/// bad JSON, a header without a kind, or a duplicated section.
ModelFile decode_model_file(const std::string& bytes, const std::string& source_name);

/// Writes `file` to `path` atomically (see encode_model_file; FileError naming `path` when it
/// cannot be written).
void write_model_file(const std::string& path, const ModelFile& file);

/// Reads and decodes the model file at `path` (FileError when it cannot be read, otherwise as
/// decode_model_file).
ModelFile read_model_file(const std::string& path);

/// Throws ModelFormatError (kWrongKind) naming the source, the kind found and `kind` when the
/// file holds something else.
void require_kind(const ModelFile& file, const std::string& kind);

/// A flow as a model file of kind "flow": its configuration (enums by name), tensor names and
/// shapes, parameters and buffers (float32), and standardization (float64). `metadata_json`
/// must be a JSON object; it is stored under the header key "metadata". Throws
/// InvalidArgument when metadata_json is not a JSON object.
ModelFile encode_flow(const Maf& flow, const std::string& metadata_json = "{}");

/// Rebuilds a flow from a model file, checking everything against a freshly built flow of the
/// stored configuration: the kind, every configuration field, tensor names, shapes and
/// offsets, section sizes, finite parameters and buffers, positive running variances and
/// standardization scales. Throws ModelFormatError (kWrongKind or kCorrupted) naming the
/// source and the field, tensor or section at fault.
Maf decode_flow(const ModelFile& file);

/// Saves `flow` to `path` atomically, with `metadata_json` as in encode_flow.
///
///     nfcal::save_flow("flow.nfcal", flow, R"({"data": "train.npy"})");
///     nfcal::Maf copy = nfcal::load_flow("flow.nfcal");
void save_flow(const std::string& path, const Maf& flow, const std::string& metadata_json = "{}");

/// Loads a flow saved by save_flow (FileError when the file cannot be read, ModelFormatError
/// as in decode_model_file and decode_flow).
Maf load_flow(const std::string& path);

}  // namespace nfcal
