// MAF sampling on the GPU: x = f^-1(u) with u ~ N(0, I), matching BasicMaf<float>::sample.
//
// maf_sample_kernel: one thread per row, `tile` rows per block. Each thread draws its row's
// base noise from Philox keyed by (seed, first_row + row) (rows::base_noise_row, the CPU's
// BasicMaf::base_noise), then walks the layers from last to first: inverse batch norm, then
// the MADE inverse. The degree-ordered variant (rows::made_inverse_row) computes each hidden
// unit once, as soon as the outputs it depends on are known; the naive variant
// (rows::made_inverse_row_naive) runs the whole network D times per layer, for comparison.
// All threads of a block follow the same unit schedule (it depends on the model only), so
// the weight reads are shared-memory broadcasts.
//
// Memory plan (KernelPlan, chosen once per device and model): the layer's packed block in
// shared memory when it fits, and the rows' strided state in shared memory when that fits
// too; otherwise the state lives in a global scratch laid out [element][row], so neighbouring
// threads still touch neighbouring words. Grid: ceil(rows / tile) blocks per chunk.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>

#include "common/maf_rows.hpp"
#include "cuda_maf_impl.cuh"

namespace nfcal {

namespace {

struct SampleArgs {
  rows::PackedMaf maf;
  const rows::PackedMade* made;  // (layers)
  const float* floats;
  const int* ints;
  float* x;  // (n, D) output
  std::size_t n;
  std::uint64_t seed;
  std::uint64_t first_row;
  float* scratch;      // global state [element][row] of the chunk, or nullptr
  int scratch_stride;  // rows in the scratch layout
  bool weights_shared;
};

__device__ void copy_layer(const float* source, float* target, int count) {
  const float4* s = reinterpret_cast<const float4*>(source);
  float4* t = reinterpret_cast<float4*>(target);
  for (int i = threadIdx.x; i < count / 4; i += blockDim.x) t[i] = s[i];
}

template <bool kNaive>
__global__ void maf_sample_kernel(SampleArgs a) {
  extern __shared__ float4 shared4[];
  float* weights = reinterpret_cast<float*>(shared4);
  const int tile = blockDim.x;
  const std::size_t local = static_cast<std::size_t>(blockIdx.x) * tile + threadIdx.x;
  const bool active = local < a.n;

  // This thread's state: shared after the weights, or its column of the global scratch.
  rows::RowState s;
  if (a.scratch == nullptr) {
    float* state = weights + (a.weights_shared ? a.maf.max_block_floats : 0);
    s = rows::strided_state(a.maf, state + threadIdx.x, tile);
  } else {
    s = rows::strided_state(a.maf, a.scratch + local, a.scratch_stride);
  }
  if (active) rows::base_noise_row(a.maf, a.seed, a.first_row + local, s);

  // Layers last to first: inverse batch norm, then the MADE inverse.
  for (int m = a.maf.layers - 1; m >= 0; --m) {
    const rows::PackedMade& made = a.made[m];
    const float* block = a.floats + made.block;
    if (a.weights_shared) {
      __syncthreads();
      copy_layer(block, weights, made.block_floats);
      __syncthreads();
      block = weights;
    }
    if (!active) continue;
    rows::batch_norm_inverse_row(a.maf, made, a.floats, s);
    const rows::LayerView view{block, a.ints, &made};
    if (kNaive) {
      rows::made_inverse_row_naive(a.maf, view, s);
    } else {
      rows::made_inverse_row(a.maf, view, s);
    }
  }
  if (!active) return;

  // Back to the user's units.
  rows::unstandardize_row(a.maf, a.floats, s);
  for (int c = 0; c < a.maf.dim; ++c) a.x[local * a.maf.dim + c] = s.x[c * s.stride];
}

}  // namespace

void configure_sampling_kernels(const KernelPlan& plan, std::size_t shared_limit) {
  if (plan.shared_bytes == 0) return;
  const int bytes = static_cast<int>(shared_limit);
  NFCAL_CUDA_CHECK(cudaFuncSetAttribute(maf_sample_kernel<false>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  NFCAL_CUDA_CHECK(cudaFuncSetAttribute(maf_sample_kernel<true>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

void launch_sample(const CudaMaf::Impl& impl, std::size_t n, std::uint64_t seed,
                   std::uint64_t first_row, float* d_x, bool naive, cudaStream_t stream) {
  if (n == 0) return;
  const KernelPlan& plan = impl.sampling;
  const rows::PackedMaf& maf = impl.packed.maf;
  SampleArgs args{maf,
                  impl.d_made.data(),
                  impl.d_floats.data(),
                  impl.d_ints.data(),
                  nullptr,
                  0,
                  seed,
                  0,
                  nullptr,
                  0,
                  plan.weights_shared};

  // Chunks: all rows at once with shared state; else as many as the scratch allows, keeping
  // every strided index inside int range.
  std::size_t chunk = n;
  const std::size_t state = static_cast<std::size_t>(rows::state_floats(maf));
  if (!plan.state_shared) {
    const std::size_t cap = std::min<std::size_t>(n, INT_MAX / state - plan.tile);
    chunk = cuda_detail::rows_that_fit(state * sizeof(float), 0.5, cap);
    chunk = std::max<std::size_t>(plan.tile, chunk / plan.tile * plan.tile);
    impl.scratch.resize(chunk * state, "sampling scratch");
    args.scratch = impl.scratch.data();
    args.scratch_stride = static_cast<int>(chunk);
  }

  for (std::size_t first = 0; first < n; first += chunk) {
    args.n = std::min(chunk, n - first);
    args.first_row = first_row + first;
    args.x = d_x + first * maf.dim;
    const unsigned grid = static_cast<unsigned>((args.n + plan.tile - 1) / plan.tile);
    if (naive) {
      maf_sample_kernel<true><<<grid, plan.tile, plan.shared_bytes, stream>>>(args);
    } else {
      maf_sample_kernel<false><<<grid, plan.tile, plan.shared_bytes, stream>>>(args);
    }
    NFCAL_LAUNCH_CHECK();
  }
}

}  // namespace nfcal
