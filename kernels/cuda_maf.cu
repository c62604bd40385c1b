// nfcal::CudaMaf: packs a flow, uploads it once, chooses the kernels' memory plans once per
// device and model, and runs density and sampling on device or host data.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "nfcal/device.hpp"

#include "cuda_maf_impl.cuh"

namespace nfcal {

CudaMaf::Impl::~Impl() {
  if (cublas != nullptr) cublasDestroy(cublas);
}

namespace {

/// Rows per host round trip of the host convenience functions.
constexpr std::size_t kHostChunkRows = std::size_t(1) << 20;

void check_device(int device) {
  const int count = cuda_device_count();
  if (device < 0 || device >= count) {
    throw InvalidArgument("CUDA device " + std::to_string(device) + " requested, " +
                          std::to_string(count) + " visible; use the CPU backend");
  }
}

}  // namespace

CudaMaf::CudaMaf(const Maf& flow, int device) : impl_(std::make_unique<Impl>()) {
  check_device(device);
  cuda_detail::DeviceGuard guard(device);
  Impl& impl = *impl_;
  impl.device = device;

  // Pack on the host, upload once.
  impl.packed = rows::pack_flow(flow);
  impl.d_floats.upload(impl.packed.floats.data(), impl.packed.floats.size(), nullptr);
  impl.d_ints.upload(impl.packed.ints.data(), impl.packed.ints.size(), nullptr);
  impl.d_made.upload(impl.packed.made.data(), impl.packed.made.size(), nullptr);
  NFCAL_CUDA_CHECK(cudaStreamSynchronize(nullptr));

  // Decide the kernels' memory plans once for this device and model.
  int optin = 0;
  NFCAL_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  impl.shared_optin = static_cast<std::size_t>(optin);
  impl.fused_density = rows::plan_fused_density(impl.packed.maf, impl.shared_optin);
  impl.sampling = rows::plan_sampling(impl.packed.maf, impl.shared_optin);
  configure_density_kernels(impl.fused_density, impl.shared_optin);
  configure_sampling_kernels(impl.sampling, impl.shared_optin);
  impl.path = impl.fused_density.tile > 0 ? DensityPath::kFused : DensityPath::kGeneral;

  // cuBLAS in strict fp32 (no TF32), so the general path keeps the parity tolerance.
  NFCAL_CUBLAS_CHECK(cublasCreate(&impl.cublas));
  NFCAL_CUBLAS_CHECK(cublasSetMathMode(impl.cublas, CUBLAS_DEFAULT_MATH));
}

CudaMaf::~CudaMaf() = default;
CudaMaf::CudaMaf(CudaMaf&& other) noexcept = default;
CudaMaf& CudaMaf::operator=(CudaMaf&& other) noexcept = default;

int CudaMaf::device() const { return impl_->device; }
int CudaMaf::dim() const { return impl_->packed.maf.dim; }
DensityPath CudaMaf::density_path() const { return impl_->path; }

void CudaMaf::set_density_path(DensityPath path) {
  if (path == DensityPath::kFused && impl_->fused_density.tile == 0) {
    throw InvalidArgument("CudaMaf: this flow's layer weights do not fit in shared memory (" +
                          std::to_string(impl_->shared_optin) +
                          " bytes per block); use DensityPath::kGeneral");
  }
  impl_->path = path;
}

void CudaMaf::log_prob(const float* d_x, std::size_t n, float* d_out, CudaStream stream) const {
  cuda_detail::DeviceGuard guard(impl_->device);
  if (impl_->path == DensityPath::kFused) {
    launch_density_fused(*impl_, d_x, n, d_out, stream);
  } else {
    launch_density_general(*impl_, d_x, n, d_out, stream);
  }
}

std::vector<float> CudaMaf::log_prob(const Matrix<float>& x) const {
  if (x.cols() != static_cast<std::size_t>(dim())) {
    throw DataError("CudaMaf::log_prob: rows have " + std::to_string(x.cols()) +
                    " columns, the flow has " + std::to_string(dim()));
  }
  cuda_detail::DeviceGuard guard(impl_->device);
  cuda_detail::Stream stream;
  std::vector<float> out(x.rows());

  // Chunks through pinned staging, so any n fits.
  const std::size_t chunk = std::min(kHostChunkRows, std::max<std::size_t>(1, x.rows()));
  cuda_detail::PinnedBuffer<float> staging(chunk * dim());
  cuda_detail::DeviceBuffer<float> d_x(chunk * dim(), "log_prob rows");
  cuda_detail::DeviceBuffer<float> d_out(chunk, "log_prob results");
  for (std::size_t first = 0; first < x.rows(); first += chunk) {
    const std::size_t rows = std::min(chunk, x.rows() - first);
    std::copy(x.row(first), x.row(first) + rows * dim(), staging.data());
    d_x.upload(staging.data(), rows * dim(), stream.get());
    log_prob(d_x.data(), rows, d_out.data(), stream.get());
    NFCAL_CUDA_CHECK(cudaMemcpyAsync(out.data() + first, d_out.data(), rows * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream.get()));
    stream.synchronize();
  }
  return out;
}

void CudaMaf::sample(std::size_t n, std::uint64_t seed, std::uint64_t first_row, float* d_x,
                     CudaStream stream) const {
  cuda_detail::DeviceGuard guard(impl_->device);
  launch_sample(*impl_, n, seed, first_row, d_x, false, stream);
}

void CudaMaf::sample_naive(std::size_t n, std::uint64_t seed, std::uint64_t first_row, float* d_x,
                           CudaStream stream) const {
  cuda_detail::DeviceGuard guard(impl_->device);
  launch_sample(*impl_, n, seed, first_row, d_x, true, stream);
}

Matrix<float> CudaMaf::sample(std::size_t n, std::uint64_t seed, std::uint64_t first_row) const {
  cuda_detail::DeviceGuard guard(impl_->device);
  cuda_detail::Stream stream;
  Matrix<float> out(n, dim());
  const std::size_t chunk = std::min(kHostChunkRows, std::max<std::size_t>(1, n));
  cuda_detail::DeviceBuffer<float> d_x(chunk * dim(), "sample rows");
  for (std::size_t first = 0; first < n; first += chunk) {
    const std::size_t rows = std::min(chunk, n - first);
    sample(rows, seed, first_row + first, d_x.data(), stream.get());
    NFCAL_CUDA_CHECK(cudaMemcpyAsync(out.row(first), d_x.data(), rows * dim() * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream.get()));
    stream.synchronize();
  }
  return out;
}

}  // namespace nfcal
