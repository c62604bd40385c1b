// Error checks, RAII device memory, streams and events for the CUDA backend.
//
// Every CUDA, cuBLAS and CUB call and every kernel launch goes through a NFCAL_*_CHECK macro,
// which throws nfcal::CudaError with file, line, the failed expression and CUDA's own text, and
// clears the sticky error state first. Allocation failures name the size asked for and the
// memory free at that moment. Host code only (includable from .cpp files too).
//
// Debug switch, free when off: compile with -DNFCAL_CUDA_SYNC_AFTER_LAUNCH=1 and every
// NFCAL_LAUNCH_CHECK also synchronizes, so an asynchronous fault is reported at its launch.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "nfcal/error.hpp"

namespace nfcal::cuda_detail {

/// Throws CudaError for a failed runtime call after clearing the sticky error.
[[noreturn]] void throw_cuda(cudaError_t status, const char* expression, const char* file,
                             int line);
/// Throws CudaError for a failed cuBLAS call.
[[noreturn]] void throw_cublas(cublasStatus_t status, const char* expression, const char* file,
                               int line);
/// Synchronizes the device when NFCAL_CUDA_SYNC_AFTER_LAUNCH is set, reporting faults.
void sync_after_launch(const char* file, int line);

/// Bytes as "12.5 MiB" for messages.
std::string format_bytes(std::size_t bytes);

/// cudaMalloc that throws CudaError naming `what`, the bytes asked for and the bytes free.
void* device_allocate(std::size_t bytes, const char* what);
/// cudaMallocHost (pinned) with the same reporting.
void* pinned_allocate(std::size_t bytes, const char* what);

/// Rows of `bytes_per_row` that fit in `fraction` of the currently free device memory,
/// at least 1 and at most `cap`.
std::size_t rows_that_fit(std::size_t bytes_per_row, double fraction, std::size_t cap);

}  // namespace nfcal::cuda_detail

#define NFCAL_CUDA_CHECK(expression)                                                    \
  do {                                                                                  \
    const cudaError_t nfcal_status_ = (expression);                                     \
    if (nfcal_status_ != cudaSuccess) {                                                 \
      ::nfcal::cuda_detail::throw_cuda(nfcal_status_, #expression, __FILE__, __LINE__); \
    }                                                                                   \
  } while (0)

#define NFCAL_CUBLAS_CHECK(expression)                                                    \
  do {                                                                                    \
    const cublasStatus_t nfcal_status_ = (expression);                                    \
    if (nfcal_status_ != CUBLAS_STATUS_SUCCESS) {                                         \
      ::nfcal::cuda_detail::throw_cublas(nfcal_status_, #expression, __FILE__, __LINE__); \
    }                                                                                     \
  } while (0)

// After a kernel launch: launch-configuration errors now, execution faults in debug builds.
#define NFCAL_LAUNCH_CHECK()                                     \
  do {                                                           \
    NFCAL_CUDA_CHECK(cudaGetLastError());                        \
    ::nfcal::cuda_detail::sync_after_launch(__FILE__, __LINE__); \
  } while (0)

namespace nfcal::cuda_detail {

/// Owns `size` values of T in device memory. Move-only; frees on destruction.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t size, const char* what = "device buffer") {
    resize(size, what);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    swap(other);
    return *this;
  }
  ~DeviceBuffer() { cudaFree(data_); }

  /// Reallocates to hold `size` values when it holds fewer; contents are not kept.
  void resize(std::size_t size, const char* what = "device buffer") {
    if (size <= capacity_) {
      size_ = size;
      return;
    }
    cudaFree(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;  // a failed allocation leaves an empty buffer, not a stale size
    data_ = static_cast<T*>(device_allocate(size * sizeof(T), what));
    size_ = capacity_ = size;
  }

  /// Copies n values from host memory, asynchronously on stream.
  void upload(const T* host, std::size_t n, cudaStream_t stream) {
    resize(n);
    NFCAL_CUDA_CHECK(cudaMemcpyAsync(data_, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  void swap(DeviceBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// Page-locked host memory for staging copies. Move-only.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t size) { resize(size); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { cudaFreeHost(data_); }

  /// Reallocates to hold `size` values when it holds fewer; contents are not kept.
  void resize(std::size_t size) {
    if (size <= capacity_) return;
    cudaFreeHost(data_);
    data_ = nullptr;
    capacity_ = 0;
    data_ = static_cast<T*>(pinned_allocate(size * sizeof(T), "pinned staging buffer"));
    capacity_ = size;
  }
  T* data() noexcept { return data_; }

 private:
  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

/// A non-blocking stream owned for the object's lifetime.
class Stream {
 public:
  Stream() { NFCAL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { cudaStreamDestroy(stream_); }
  cudaStream_t get() const noexcept { return stream_; }
  void synchronize() const { NFCAL_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

/// An event without timing, for ordering work between streams.
class Event {
 public:
  explicit Event(unsigned flags = cudaEventDisableTiming) {
    NFCAL_CUDA_CHECK(cudaEventCreateWithFlags(&event_, flags));
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { cudaEventDestroy(event_); }
  cudaEvent_t get() const noexcept { return event_; }

  /// Makes `waiter` wait for the work queued on `producer` so far.
  void order(cudaStream_t producer, cudaStream_t waiter) {
    NFCAL_CUDA_CHECK(cudaEventRecord(event_, producer));
    NFCAL_CUDA_CHECK(cudaStreamWaitEvent(waiter, event_, 0));
  }

 private:
  cudaEvent_t event_ = nullptr;
};

/// Sets the current device for the lifetime of the object and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    NFCAL_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) NFCAL_CUDA_CHECK(cudaSetDevice(device));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

}  // namespace nfcal::cuda_detail
