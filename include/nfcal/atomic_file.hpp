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

/// A path that must not outlive a program ended by a signal: while this object lives, the path
/// is registered for remove_registered_paths(). A file is unlinked; a folder loses the files
/// directly inside it and is then removed (nfcal's output folders hold no subfolders). The
/// temporary files of write_file_atomically() are registered this way while they exist.
/// Registration never throws: past 64 live registrations, or for a path longer than the
/// system's limit, the path is simply left alone.
class RemovedOnSignal {
 public:
  enum class Kind { kFile, kFolder };
  RemovedOnSignal(const std::string& path, Kind kind) noexcept;
  ~RemovedOnSignal();
  RemovedOnSignal(const RemovedOnSignal&) = delete;
  RemovedOnSignal& operator=(const RemovedOnSignal&) = delete;

 private:
  int slot_ = -1;
};

/// Removes every registered path, using async-signal-safe calls only, so that a handler for
/// SIGINT or SIGTERM can call it before the program ends (the nfcal tool does).
void remove_registered_paths() noexcept;

/// Reads the whole file at `path` into a string of bytes.
/// Throws FileError naming `path` when it does not exist, is a folder, or cannot be read.
std::string read_file_bytes(const std::string& path);

}  // namespace nfcal
