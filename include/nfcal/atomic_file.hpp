// Atomic file writes: every file nfcal writes appears whole or not at all. Bytes go to a
// temporary file in the destination's folder, are flushed to disk, and the temporary is then
// renamed over the destination, so readers never see a partial file and a failed write leaves
// nothing behind.
#pragma once

#include <string>

namespace nfcal {

/// Writes `bytes` to `path` atomically: a temporary file beside `path` (same folder, so the
/// rename cannot cross file systems), fsync, then rename over `path`.
/// Throws FileError naming `path` when the folder does not exist or is not writable, the disk
/// is full, or the rename fails; the temporary file is removed in every failure case and an
/// existing file at `path` is left untouched.
///
///     nfcal::write_file_atomically("out/metrics.json", json_text);
void write_file_atomically(const std::string& path, const std::string& bytes);

/// Reads the whole file at `path` into a string of bytes.
/// Throws FileError naming `path` when it does not exist, is a folder, or cannot be read.
std::string read_file_bytes(const std::string& path);

}  // namespace nfcal
