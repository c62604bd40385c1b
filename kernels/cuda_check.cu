// Error reporting and memory helpers of the CUDA backend (declared in cuda_check.cuh).
#include <algorithm>
#include <cstdio>

#include "cuda_check.cuh"

namespace nfcal::cuda_detail {

namespace {

std::string where(const char* expression, const char* file, int line) {
  return std::string(file) + ":" + std::to_string(line) + ": " + expression;
}

}  // namespace

void throw_cuda(cudaError_t status, const char* expression, const char* file, int line) {
  cudaGetLastError();  // clear the sticky state so later calls are not blamed
  throw CudaError(where(expression, file, line) + " failed: " + cudaGetErrorName(status) + " (" +
                  cudaGetErrorString(status) + ")");
}

void throw_cublas(cublasStatus_t status, const char* expression, const char* file, int line) {
  cudaGetLastError();
  throw CudaError(where(expression, file, line) + " failed: " + cublasGetStatusName(status) + " (" +
                  cublasGetStatusString(status) + ")");
}

void sync_after_launch(const char* file, int line) {
#if defined(NFCAL_CUDA_SYNC_AFTER_LAUNCH) && NFCAL_CUDA_SYNC_AFTER_LAUNCH
  const cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess) throw_cuda(status, "kernel execution", file, line);
#else
  (void)file;
  (void)line;
#endif
}

std::string format_bytes(std::size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

void* device_allocate(std::size_t bytes, const char* what) {
  // Out-of-memory names the request and what was free, so the caller can size it down.
  void* pointer = nullptr;
  const cudaError_t status = cudaMalloc(&pointer, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw CudaError("out of device memory: " + std::string(what) + " asked for " +
                    format_bytes(bytes) + " with " + format_bytes(free_bytes) + " free of " +
                    format_bytes(total_bytes));
  }
  if (status != cudaSuccess) throw_cuda(status, "cudaMalloc", __FILE__, __LINE__);
  return pointer;
}

void* pinned_allocate(std::size_t bytes, const char* what) {
  void* pointer = nullptr;
  const cudaError_t status = cudaMallocHost(&pointer, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw CudaError("cannot allocate pinned host memory: " + std::string(what) + " asked for " +
                    format_bytes(bytes) + ": " + cudaGetErrorString(status));
  }
  return pointer;
}

std::size_t rows_that_fit(std::size_t bytes_per_row, double fraction, std::size_t cap) {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  NFCAL_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const double budget = static_cast<double>(free_bytes) * fraction;
  const auto rows = static_cast<std::size_t>(budget / static_cast<double>(bytes_per_row));
  return std::max<std::size_t>(1, std::min(rows, cap));
}

}  // namespace nfcal::cuda_detail
