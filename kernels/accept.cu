// Rejection step and log Z reductions of calibrated sampling on the GPU.
//
// accept_flags_kernel, one thread per candidate (256 per block): margin -> class-balance
// correction -> ceiling -> u from Philox keyed by (seed, first_index + i) in the accept stream
// -> flag, all through calib:: (common/accept.hpp), the same functions the CPU sampler calls.
// cub::DeviceSelect::Flagged then lists the accepted candidate indices in order, and
// gather_rows_kernel copies those rows into the output at the running offset; the count stays
// on the device until the caller reads it, once per round.
//
// log_sum_exp_kernel folds values into calib::LogSumExp (max, sum exp(v - max), sum of
// squares) and the largest unclipped value per thread with a grid-stride loop, merges them with
// cub::BlockReduce, and writes one partial per block; a one-block launch merges the partials in a
// fixed order, so the result is deterministic.
#include <algorithm>
#include <cmath>

#include <cub/block/block_reduce.cuh>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include "common/accept.hpp"
#include "cuda_accept.cuh"

namespace nfcal {

namespace {

constexpr int kThreads = 256;
constexpr int kReduceBlocks = 1024;

__global__ void accept_flags_kernel(const float* margins, std::size_t n, std::uint64_t first_index,
                                    AcceptParams p, std::uint8_t* flags) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float clipped = calib::clipped_margin(margins[i], p.balance, p.ceiling);
  flags[i] = calib::accept_candidate(p.seed, first_index + i, clipped, p.ceiling) ? 1 : 0;
}

/// out row (offset + j) = rows[selected[j]] for j < count, while inside the capacity.
__global__ void gather_rows_kernel(const float* rows, int dim, const std::uint32_t* selected,
                                   const std::uint32_t* count, std::size_t offset,
                                   std::size_t capacity, float* out) {
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= *count || offset + j >= capacity) return;
  const float* source = rows + static_cast<std::size_t>(selected[j]) * dim;
  float* target = out + (offset + j) * dim;
  for (int c = 0; c < dim; ++c) target[c] = source[c];
}

struct MergePartials {
  __device__ LogZPartial operator()(LogZPartial a, const LogZPartial& b) const {
    a.clipped.merge(b.clipped);
    a.max_raw = a.max_raw > b.max_raw ? a.max_raw : b.max_raw;
    return a;
  }
};

__global__ void log_sum_exp_kernel(const float* values, std::size_t n, float ceiling,
                                   LogZPartial* out) {
  using Reduce = cub::BlockReduce<LogZPartial, kThreads>;
  __shared__ typename Reduce::TempStorage storage;

  // Each thread folds a strided slice; NaN values are skipped (the caller counts them).
  LogZPartial acc;
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step) {
    const float v = values[i];
    if (v != v) continue;
    acc.clipped.add(v < ceiling ? v : ceiling);
    if (v > acc.max_raw) acc.max_raw = v;
  }
  const LogZPartial total = Reduce(storage).Reduce(acc, MergePartials());
  if (threadIdx.x == 0) out[blockIdx.x] = total;
}

__global__ void merge_partials_kernel(const LogZPartial* partials, int count, LogZPartial* out) {
  using Reduce = cub::BlockReduce<LogZPartial, kThreads>;
  __shared__ typename Reduce::TempStorage storage;
  LogZPartial acc;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc = MergePartials()(acc, partials[i]);
  const LogZPartial total = Reduce(storage).Reduce(acc, MergePartials());
  if (threadIdx.x == 0) *out = total;
}

unsigned blocks_for(std::size_t count) {
  return static_cast<unsigned>((count + kThreads - 1) / kThreads);
}

}  // namespace

void AcceptWorkspace::reserve(std::size_t n) {
  flags.resize(n, "accept flags");
  selected.resize(n, "accepted indices");
  count.resize(1, "accepted count");
  host_count.resize(1);

  // CUB's scratch for the largest round seen so far.
  std::size_t bytes = 0;
  NFCAL_CUDA_CHECK(cub::DeviceSelect::Flagged(
      nullptr, bytes, thrust::counting_iterator<std::uint32_t>(0), flags.data(), selected.data(),
      count.data(), static_cast<std::int64_t>(n)));
  cub_scratch.resize(std::max<std::size_t>(bytes, 1), "compaction scratch");
}

void launch_accept(const float* d_margins, std::size_t n, std::uint64_t first_index,
                   const AcceptParams& params, AcceptWorkspace& w, cudaStream_t stream) {
  if (n > UINT32_MAX) throw InvalidArgument("accept: more than 2^32 candidates in one round");
  w.reserve(n);
  if (n == 0) return;
  accept_flags_kernel<<<blocks_for(n), kThreads, 0, stream>>>(d_margins, n, first_index, params,
                                                              w.flags.data());
  NFCAL_LAUNCH_CHECK();
  std::size_t bytes = w.cub_scratch.size();
  NFCAL_CUDA_CHECK(cub::DeviceSelect::Flagged(
      w.cub_scratch.data(), bytes, thrust::counting_iterator<std::uint32_t>(0), w.flags.data(),
      w.selected.data(), w.count.data(), static_cast<std::int64_t>(n), stream));
}

void launch_gather(const float* d_rows, std::size_t n, int dim, AcceptWorkspace& w,
                   std::size_t offset, std::size_t capacity, float* d_out, cudaStream_t stream) {
  if (n == 0) return;
  gather_rows_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
      d_rows, dim, w.selected.data(), w.count.data(), offset, capacity, d_out);
  NFCAL_LAUNCH_CHECK();
}

std::size_t read_count(AcceptWorkspace& w, cudaStream_t stream) {
  NFCAL_CUDA_CHECK(cudaMemcpyAsync(w.host_count.data(), w.count.data(), sizeof(std::uint32_t),
                                   cudaMemcpyDeviceToHost, stream));
  NFCAL_CUDA_CHECK(cudaStreamSynchronize(stream));
  return w.host_count.data()[0];
}

LogZPartial log_sum_exp_device(const float* d_values, std::size_t n, float ceiling,
                               cudaStream_t stream) {
  if (n == 0) return LogZPartial{};
  const int blocks = static_cast<int>(std::min<std::size_t>(kReduceBlocks, blocks_for(n)));
  cuda_detail::DeviceBuffer<LogZPartial> partials(blocks + 1, "log-sum-exp partials");
  log_sum_exp_kernel<<<blocks, kThreads, 0, stream>>>(d_values, n, ceiling, partials.data());
  NFCAL_LAUNCH_CHECK();
  merge_partials_kernel<<<1, kThreads, 0, stream>>>(partials.data(), blocks,
                                                    partials.data() + blocks);
  NFCAL_LAUNCH_CHECK();
  LogZPartial result;
  NFCAL_CUDA_CHECK(cudaMemcpyAsync(&result, partials.data() + blocks, sizeof(result),
                                   cudaMemcpyDeviceToHost, stream));
  NFCAL_CUDA_CHECK(cudaStreamSynchronize(stream));
  return result;
}

LogZEstimate to_estimate(const LogZPartial& partial) {
  LogZEstimate e;
  e.log_z = partial.clipped.log_mean_exp();
  e.se = partial.clipped.log_mean_exp_se();
  e.ess = partial.clipped.effective_sample_size();
  e.samples = static_cast<std::size_t>(partial.clipped.count);
  e.max_margin = partial.max_raw;
  return e;
}

std::size_t cuda_accept_rows(const float* d_rows, const float* d_margins, std::size_t n, int dim,
                             std::uint64_t first_index, std::uint64_t seed, float ceiling,
                             float* d_out, std::size_t offset, std::size_t capacity,
                             CudaStream stream) {
  if (!std::isfinite(ceiling)) throw InvalidArgument("cuda_accept_rows: ceiling must be finite");
  AcceptWorkspace w;
  launch_accept(d_margins, n, first_index, AcceptParams{seed, 0.0f, ceiling}, w, stream);
  launch_gather(d_rows, n, dim, w, offset, capacity, d_out, stream);
  return n == 0 ? 0 : read_count(w, stream);
}

LogZEstimate cuda_log_mean_exp(const float* d_values, std::size_t n, float ceiling,
                               CudaStream stream) {
  return to_estimate(log_sum_exp_device(d_values, n, ceiling, stream));
}

}  // namespace nfcal
