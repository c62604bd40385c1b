// Atomic writes through a temporary file in the destination folder, paths removed when a
// signal ends the program, and whole-file reads.
#include "nfcal/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "nfcal/error.hpp"

namespace nfcal {
namespace {

// The folder part of a path ("." when it has none), for fsync after the rename.
std::string parent_folder(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A FileError for `path` with the operating system's reason.
FileError os_error(const std::string& action, const std::string& path, int error_number) {
  return FileError("cannot " + action + " '" + path + "': " + std::strerror(error_number));
}

// Opens a fresh temporary file beside `path`; O_EXCL makes the name ours alone. The mode
// 0666 lets the process umask decide permissions, as for any ordinary file.
int open_temporary(const std::string& path, std::string* temporary) {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    *temporary =
        path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    const int fd = ::open(temporary->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST) throw os_error("write", path, errno);
  }
  throw FileError("cannot write '" + path + "': no free temporary file name beside it");
}

// --- Paths removed on a signal -------------------------------------------------------------
// A fixed table, so that a signal handler can walk it without allocating or locking. A slot is
// free, being filled, or registered; the handler acts on registered slots only.
constexpr int kSlotCount = 64;
enum SlotState : int { kFree = 0, kFilling = 1, kRegistered = 2 };

struct RegisteredPath {
  std::atomic<int> state{kFree};
  RemovedOnSignal::Kind kind = RemovedOnSignal::Kind::kFile;
  char path[PATH_MAX] = {};
};

RegisteredPath registered_paths[kSlotCount];
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs lock-free slot states");

// Unlinks the entries directly inside the folder, then the folder itself; every call here is
// async-signal-safe. Entries are listed afresh after each pass, since unlinking while a listing
// is read may skip some.
void remove_folder_and_files(const char* path) noexcept {
  const int folder = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder < 0) return;
  constexpr int kMaxPasses = 16;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    if (::lseek(folder, 0, SEEK_SET) != 0) break;
    int removed = 0;
    alignas(dirent64) char listing[8192];
    ssize_t bytes = 0;
    while ((bytes = ::getdents64(folder, listing, sizeof(listing))) > 0) {
      for (ssize_t offset = 0; offset < bytes;) {
        const auto* entry = reinterpret_cast<const dirent64*>(listing + offset);
        offset += entry->d_reclen;
        const char* name = entry->d_name;
        const bool dot = name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
        if (!dot && entry->d_type != DT_DIR && ::unlinkat(folder, name, 0) == 0) ++removed;
      }
    }
    if (removed == 0) break;
  }
  ::close(folder);
  ::rmdir(path);
}

// Writes every byte, retrying short writes and interrupted calls; returns errno or 0.
int write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t written = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<std::size_t>(written);
  }
  return 0;
}

}  // namespace

RemovedOnSignal::RemovedOnSignal(const std::string& path, Kind kind) noexcept {
  if (path.empty() || path.size() >= PATH_MAX) return;
  for (int slot = 0; slot < kSlotCount; ++slot) {
    int expected = kFree;
    RegisteredPath& entry = registered_paths[slot];
    if (!entry.state.compare_exchange_strong(expected, kFilling)) continue;
    entry.kind = kind;
    std::memcpy(entry.path, path.c_str(), path.size() + 1);
    entry.state.store(kRegistered);
    slot_ = slot;
    return;
  }
}

RemovedOnSignal::~RemovedOnSignal() {
  if (slot_ >= 0) registered_paths[slot_].state.store(kFree);
}

void remove_registered_paths() noexcept {
  for (int slot = 0; slot < kSlotCount; ++slot) {
    RegisteredPath& entry = registered_paths[slot];
    if (entry.state.load() != kRegistered) continue;
    if (entry.kind == RemovedOnSignal::Kind::kFile) {
      ::unlink(entry.path);
    } else {
      remove_folder_and_files(entry.path);
    }
  }
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  if (path.empty()) throw FileError("cannot write a file with an empty path");

  // Fill the temporary file and force it to disk before it takes the real name.
  std::string temporary;
  const int fd = open_temporary(path, &temporary);
  const RemovedOnSignal unfinished(temporary, RemovedOnSignal::Kind::kFile);
  int failure = write_all(fd, bytes);
  if (failure == 0 && ::fsync(fd) != 0) failure = errno;
  if (::close(fd) != 0 && failure == 0) failure = errno;
  if (failure != 0) {
    ::unlink(temporary.c_str());
    throw os_error("write", path, failure);
  }

  // The rename is the atomic step: readers see the old file or the new one, never a mix.
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    ::unlink(temporary.c_str());
    throw os_error("write", path, rename_error);
  }

  // Persist the folder entry too; a failure here does not undo a completed rename.
  const int folder = ::open(parent_folder(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder >= 0) {
    ::fsync(folder);
    ::close(folder);
  }
}

std::string read_file_bytes(const std::string& path) {
  // Folders open fine as streams on Linux but read as errors; say so plainly.
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw os_error("read", path, errno);
  if (S_ISDIR(info.st_mode)) throw FileError("cannot read '" + path + "': it is a folder");

  std::ifstream in(path, std::ios::binary);
  if (!in) throw os_error("read", path, errno);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw FileError("cannot read '" + path + "': read error");
  return buffer.str();
}

}  // namespace nfcal
