// Internal state of nfcal::CudaMaf and the launchers of its kernels (maf_density.cu,
// maf_sample.cu). Host code; the kernels themselves live in the .cu files.
#pragma once

#include <cublas_v2.h>

#include <cstddef>
#include <cstdint>

#include "nfcal/cuda.hpp"

#include "common/kernel_plan.hpp"
#include "common/maf_pack.hpp"
#include "cuda_check.cuh"

namespace nfcal {

using rows::KernelPlan;

struct CudaMaf::Impl {
  int device = 0;
  rows::PackedFlow packed;                             // host copy of the packed flow
  cuda_detail::DeviceBuffer<float> d_floats;           // packed.floats
  cuda_detail::DeviceBuffer<int> d_ints;               // packed.ints
  cuda_detail::DeviceBuffer<rows::PackedMade> d_made;  // (layers)
  std::size_t shared_optin = 0;                        // the device's per-block shared limit

  DensityPath path = DensityPath::kGeneral;
  KernelPlan fused_density;  // tile 0 when the fused kernel does not fit
  KernelPlan sampling;
  cublasHandle_t cublas = nullptr;

  // Scratch reused across calls (the object is single-threaded by contract).
  mutable cuda_detail::DeviceBuffer<float> scratch;
  mutable cuda_detail::DeviceBuffer<double> log_det;

  ~Impl();
};

/// Raises the dynamic shared-memory limit of the kernels a plan launches. The limit belongs to
/// the kernel, not to a launch, so every model sets the same value, the device's opt-in
/// maximum: a model built later, or on another thread, cannot shrink it below what an earlier
/// model's plan launches with.
void configure_density_kernels(const KernelPlan& plan, std::size_t shared_limit);
void configure_sampling_kernels(const KernelPlan& plan, std::size_t shared_limit);

/// Density of n rows through the fused kernel (plan.tile > 0).
void launch_density_fused(const CudaMaf::Impl& impl, const float* d_x, std::size_t n, float* d_out,
                          cudaStream_t stream);
/// Density of n rows through cuBLAS products and element-wise kernels, in chunks.
void launch_density_general(const CudaMaf::Impl& impl, const float* d_x, std::size_t n,
                            float* d_out, cudaStream_t stream);
/// Samples keyed by (seed, first_row + i), degree-ordered or naive.
void launch_sample(const CudaMaf::Impl& impl, std::size_t n, std::uint64_t seed,
                   std::uint64_t first_row, float* d_x, bool naive, cudaStream_t stream);

}  // namespace nfcal
