// Where nfcal computes: the CPU backend or one CUDA device.
#pragma once

#include <string>

namespace nfcal {

struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;  // CUDA device ordinal

  static Device cpu() { return Device{}; }
  static Device cuda(int index = 0) { return Device{Kind::kCuda, index}; }
  bool is_cuda() const { return kind == Kind::kCuda; }
  bool operator==(const Device& other) const {
    return kind == other.kind && (kind == Kind::kCpu || index == other.index);
  }

  /// Parses "cpu", "cuda", "cuda:N" or "auto" (the first GPU when one is usable, else the
  /// CPU). Throws InvalidArgument naming the text when it is none of these, or when a CUDA
  /// device is asked for that this build or this machine does not have.
  static Device parse(const std::string& text);
  std::string to_string() const;
};

/// True when this build has the CUDA backend.
bool cuda_compiled();
/// The number of usable CUDA devices (0 without the CUDA backend or without a GPU).
int cuda_device_count();

}  // namespace nfcal
