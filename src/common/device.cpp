// Device selection. The CUDA runtime is asked only when the CUDA backend is compiled in.
#include "nfcal/device.hpp"

#include <cstdlib>
#include <string>

#include "nfcal/error.hpp"

#if defined(NFCAL_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace nfcal {

bool cuda_compiled() {
#if defined(NFCAL_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#if defined(NFCAL_WITH_CUDA)
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky state left by a machine without a driver
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "auto") return cuda_device_count() > 0 ? cuda(0) : cpu();

  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (text.size() > 5) {
      const std::string digits = text.substr(5);
      char* end = nullptr;
      const long value = std::strtol(digits.c_str(), &end, 10);
      if (digits.empty() || *end != '\0' || value < 0) {
        throw InvalidArgument("device '" + text + "': expected cuda:N with N >= 0");
      }
      index = static_cast<int>(value);
    }
    if (!cuda_compiled()) {
      throw InvalidArgument("device '" + text +
                            "': this build of nfcal has no CUDA backend; use --device cpu");
    }
    const int count = cuda_device_count();
    if (index >= count) {
      throw InvalidArgument("device '" + text + "': " + std::to_string(count) +
                            " CUDA device(s) visible; use --device cpu or auto");
    }
    return cuda(index);
  }
  throw InvalidArgument("device '" + text + "': expected cpu, cuda, cuda:N or auto");
}

std::string Device::to_string() const {
  return kind == Kind::kCpu ? "cpu" : "cuda:" + std::to_string(index);
}

}  // namespace nfcal
