// Launchers of the accept/reject and log Z kernels (accept.cu), for the sampler and tests.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "nfcal/cuda.hpp"

#include "common/accept.hpp"
#include "cuda_check.cuh"

namespace nfcal {

/// What the accept kernel needs besides the margins.
struct AcceptParams {
  std::uint64_t seed = 0;
  float balance = 0.0f;  // subtracted from each margin first
  float ceiling = 2.0f;  // L, finite
};

/// Device scratch of one round of accept and compaction, reused across rounds.
struct AcceptWorkspace {
  cuda_detail::DeviceBuffer<std::uint8_t> flags;      // (n) 1 = accepted
  cuda_detail::DeviceBuffer<std::uint32_t> selected;  // (n) accepted candidate indices
  cuda_detail::DeviceBuffer<std::uint32_t> count;     // (1) accepted this round
  cuda_detail::DeviceBuffer<unsigned char> cub_scratch;
  cuda_detail::PinnedBuffer<std::uint32_t> host_count;

  /// Grows the buffers for rounds of n candidates.
  void reserve(std::size_t n);
};

/// Flags and compacted indices of n candidates (indices first_index..), on stream.
void launch_accept(const float* d_margins, std::size_t n, std::uint64_t first_index,
                   const AcceptParams& params, AcceptWorkspace& w, cudaStream_t stream);
/// Copies the accepted rows of d_rows (n, dim) to d_out from row `offset`, inside capacity.
void launch_gather(const float* d_rows, std::size_t n, int dim, AcceptWorkspace& w,
                   std::size_t offset, std::size_t capacity, float* d_out, cudaStream_t stream);
/// The round's accepted count; synchronizes on stream.
std::size_t read_count(AcceptWorkspace& w, cudaStream_t stream);

/// A running log-sum-exp of clipped values and the largest value before clipping.
struct LogZPartial {
  calib::LogSumExp clipped;
  double max_raw = -INFINITY;
};

/// LogZPartial of min(v, ceiling) over n device values (NaN skipped); synchronizes.
LogZPartial log_sum_exp_device(const float* d_values, std::size_t n, float ceiling,
                               cudaStream_t stream);

/// The public estimate from a partial over `samples` values.
LogZEstimate to_estimate(const LogZPartial& partial);

}  // namespace nfcal
