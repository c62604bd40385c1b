// MAF density on the GPU: log P(x) for a batch of rows, matching BasicMaf<float>::log_prob.
//
// Fused path, maf_density_fused_kernel: one thread per row, `tile` rows per block. Shared
// memory holds one MADE layer's packed block (transposed, zero-masked weights and biases) and
// every row's state in a strided layout (element c of the block's row t at [c * tile + t], so
// a warp's accesses hit 32 different banks while weight reads are broadcasts). The block walks
// all layers: copy the layer's weights (16-byte loads), run rows::made_density_row (all hidden
// layers and both outputs, stopping each group of four units at its prefix), then batch norm.
// Grid: ceil(n / tile) blocks; shared bytes: (largest block + tile * state) * 4. The row math
// is common/maf_rows.hpp, tested on the CPU against src/maf.
//
// General path: per layer, a gather kernel, one cuBLAS sgemm per band of units (the bands of
// the prefix structure, so zero blocks are skipped as on the CPU), bias and activation
// kernels, and an affine kernel; log-determinants accumulate in double per row.
#include <cuda_runtime.h>

#include <algorithm>

#include "common/maf_rows.hpp"
#include "cuda_maf_impl.cuh"

namespace nfcal {

namespace {

constexpr int kRowsPerThreadBlock = 256;  // element-wise kernels
constexpr int kBands = 8;                 // cuBLAS products per masked matrix, at most

struct FusedDensityArgs {
  rows::PackedMaf maf;
  const rows::PackedMade* made;  // (layers)
  const float* floats;
  const int* ints;
  const float* x;  // (n, D)
  float* out;      // (n)
  std::size_t n;
};

/// Copies `count` floats (a multiple of 4, 16-byte aligned) into shared memory, block-wide.
__device__ void copy_block(const float* source, float* target, int count) {
  const float4* s = reinterpret_cast<const float4*>(source);
  float4* t = reinterpret_cast<float4*>(target);
  for (int i = threadIdx.x; i < count / 4; i += blockDim.x) t[i] = s[i];
}

__global__ void maf_density_fused_kernel(FusedDensityArgs a) {
  extern __shared__ float4 shared4[];
  float* weights = reinterpret_cast<float*>(shared4);
  float* state = weights + a.maf.max_block_floats;
  const int tile = blockDim.x;
  const std::size_t row0 = static_cast<std::size_t>(blockIdx.x) * tile;
  const bool active = row0 + threadIdx.x < a.n;
  const rows::RowState s = rows::strided_state(a.maf, state + threadIdx.x, tile);

  // The tile's rows, read coalesced and stored transposed.
  const int dim = a.maf.dim;
  const std::size_t rows_here = min(static_cast<std::size_t>(tile), a.n - row0);
  for (int i = threadIdx.x; i < static_cast<int>(rows_here) * dim; i += tile) {
    state[(i % dim) * tile + i / dim] = a.x[row0 * dim + i];
  }
  __syncthreads();
  if (active) rows::standardize_row(a.maf, a.floats, s);

  // Every layer: its weights into shared memory, then each thread's row through it.
  double log_det = 0;
  for (int m = 0; m < a.maf.layers; ++m) {
    const rows::PackedMade& made = a.made[m];
    __syncthreads();
    copy_block(a.floats + made.block, weights, made.block_floats);
    __syncthreads();
    if (active) {
      const rows::LayerView view{weights, a.ints, &made};
      log_det += rows::made_density_row(a.maf, view, s);
      rows::batch_norm_row(a.maf, made, a.floats, s);
    }
  }
  if (active) {
    a.out[row0 + threadIdx.x] = static_cast<float>(rows::base_log_density_row(a.maf, s, log_det));
  }
}

// --- General path: row-major buffers, one thread per row or per element. ---------------------

struct GeneralBuffers {
  float* x;         // (rows, D)
  float* y;         // (rows, D)
  float* acts;      // (hidden_layers, rows, hidden_pad)
  float* outs;      // (rows, out_pad)
  double* log_det;  // (rows)
  std::size_t rows;
};

__device__ rows::RowState general_state(const rows::PackedMaf& maf, const GeneralBuffers& b,
                                        std::size_t row, int out_pad) {
  rows::RowState s;
  s.x = b.x + row * maf.dim;
  s.y = b.y + row * maf.dim;
  s.outs = b.outs + row * out_pad;
  s.acts = nullptr;
  s.stride = 1;
  return s;
}

__global__ void general_prepare_kernel(rows::PackedMaf maf, const float* floats, const float* x,
                                       GeneralBuffers b) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= b.rows) return;
  for (int c = 0; c < maf.dim; ++c) b.x[row * maf.dim + c] = x[row * maf.dim + c];
  const rows::RowState s = general_state(maf, b, row, 0);
  rows::standardize_row(maf, floats, s);
  b.log_det[row] = 0.0;
}

__global__ void general_gather_kernel(rows::PackedMaf maf, const rows::PackedMade* made,
                                      const int* ints, GeneralBuffers b) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= b.rows) return;
  const rows::LayerView view{nullptr, ints, made};
  rows::gather_ordered(maf, view, general_state(maf, b, row, 0));
}

/// out[r][u] = bias[u] for all rows: the products then accumulate onto it.
__global__ void fill_bias_kernel(const float* bias, int units_pad, std::size_t rows, float* out) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows * units_pad) out[i] = bias[i % units_pad];
}

__global__ void activate_kernel(int activation, std::size_t count, float* values) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) values[i] = maf_math::activate(values[i], activation);
}

__global__ void general_affine_kernel(rows::PackedMaf maf, const rows::PackedMade* made,
                                      const float* floats, const int* ints, int out_pad,
                                      GeneralBuffers b) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= b.rows) return;
  const rows::LayerView view{nullptr, ints, made};
  const rows::RowState s = general_state(maf, b, row, out_pad);
  b.log_det[row] += rows::affine_density_row(maf, view, s);
  rows::batch_norm_row(maf, *made, floats, s);
}

__global__ void general_finish_kernel(rows::PackedMaf maf, GeneralBuffers b, float* out) {
  const std::size_t row = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= b.rows) return;
  const rows::RowState s = general_state(maf, b, row, 0);
  out[row] = static_cast<float>(rows::base_log_density_row(maf, s, b.log_det[row]));
}

unsigned blocks_for(std::size_t count, int threads) {
  return static_cast<unsigned>((count + threads - 1) / threads);
}

/// One masked matrix for a chunk: bias, banded products skipping zero blocks, activation.
void general_matrix(const CudaMaf::Impl& impl, const rows::PackedMade& made,
                    const rows::PackedMatrix& m, const float* in, int in_pitch, float* out,
                    std::size_t rows, bool activate, cudaStream_t stream) {
  const float* block = impl.d_floats.data() + made.block;
  fill_bias_kernel<<<blocks_for(rows * m.units_pad, kRowsPerThreadBlock), kRowsPerThreadBlock, 0,
                     stream>>>(block + m.bias, m.units_pad, rows, out);
  NFCAL_LAUNCH_CHECK();

  // Column-major view: out (units_pad, rows) += Wt (units_pad, in_dim) * in (in_dim, rows).
  const int* prefix = impl.packed.ints.data() + m.prefix;
  NFCAL_CUBLAS_CHECK(cublasSetStream(impl.cublas, stream));
  const float one = 1.0f;
  const int bands = std::max(1, std::min(kBands, m.units));
  for (int band = 0; band < bands; ++band) {
    const int begin = static_cast<int>(static_cast<long long>(m.units) * band / bands);
    const int end = static_cast<int>(static_cast<long long>(m.units) * (band + 1) / bands);
    int cols = 0;
    for (int u = begin; u < end; ++u) cols = std::max(cols, prefix[u]);
    if (begin == end || cols == 0) continue;
    NFCAL_CUBLAS_CHECK(cublasSgemm(impl.cublas, CUBLAS_OP_N, CUBLAS_OP_N, end - begin,
                                   static_cast<int>(rows), cols, &one, block + m.weight + begin,
                                   m.units_pad, in, in_pitch, &one, out + begin, m.units_pad));
  }
  if (activate) {
    const std::size_t count = rows * m.units_pad;
    activate_kernel<<<blocks_for(count, kRowsPerThreadBlock), kRowsPerThreadBlock, 0, stream>>>(
        impl.packed.maf.activation, count, out);
    NFCAL_LAUNCH_CHECK();
  }
}

}  // namespace

void configure_density_kernels(const KernelPlan& plan, std::size_t shared_limit) {
  if (plan.tile == 0) return;
  NFCAL_CUDA_CHECK(cudaFuncSetAttribute(maf_density_fused_kernel,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared_limit)));
}

void launch_density_fused(const CudaMaf::Impl& impl, const float* d_x, std::size_t n, float* d_out,
                          cudaStream_t stream) {
  if (n == 0) return;
  const KernelPlan& plan = impl.fused_density;
  const FusedDensityArgs args{
      impl.packed.maf, impl.d_made.data(), impl.d_floats.data(), impl.d_ints.data(), d_x, d_out, n};
  maf_density_fused_kernel<<<blocks_for(n, plan.tile), plan.tile, plan.shared_bytes, stream>>>(
      args);
  NFCAL_LAUNCH_CHECK();
}

void launch_density_general(const CudaMaf::Impl& impl, const float* d_x, std::size_t n,
                            float* d_out, cudaStream_t stream) {
  if (n == 0) return;
  const rows::PackedMaf& maf = impl.packed.maf;
  const int out_pad = rows::round_up4(2 * maf.dim);

  // Chunk size from free memory: x, y, activations and outputs per row, plus a double.
  const std::size_t floats_per_row = 2 * static_cast<std::size_t>(maf.dim) +
                                     static_cast<std::size_t>(maf.hidden_layers) * maf.hidden_pad +
                                     out_pad;
  const std::size_t chunk =
      cuda_detail::rows_that_fit(floats_per_row * sizeof(float) + sizeof(double), 0.5,
                                 std::min<std::size_t>(n, std::size_t(1) << 22));
  impl.scratch.resize(chunk * floats_per_row, "density scratch");
  impl.log_det.resize(chunk, "density log-determinants");

  for (std::size_t first = 0; first < n; first += chunk) {
    // Buffers of this chunk, carved from the scratch.
    const std::size_t rows = std::min(chunk, n - first);
    GeneralBuffers b;
    b.x = impl.scratch.data();
    b.y = b.x + rows * maf.dim;
    b.acts = b.y + rows * maf.dim;
    b.outs = b.acts + rows * maf.hidden_layers * maf.hidden_pad;
    b.log_det = impl.log_det.data();
    b.rows = rows;
    const unsigned grid = blocks_for(rows, kRowsPerThreadBlock);
    general_prepare_kernel<<<grid, kRowsPerThreadBlock, 0, stream>>>(maf, impl.d_floats.data(),
                                                                     d_x + first * maf.dim, b);
    NFCAL_LAUNCH_CHECK();

    // Each MADE layer: gather, masked products, affine step and batch norm.
    for (int layer = 0; layer < maf.layers; ++layer) {
      const rows::PackedMade& made = impl.packed.made[layer];
      const rows::PackedMade* d_made = impl.d_made.data() + layer;
      general_gather_kernel<<<grid, kRowsPerThreadBlock, 0, stream>>>(maf, d_made,
                                                                      impl.d_ints.data(), b);
      NFCAL_LAUNCH_CHECK();
      const float* in = b.y;
      int in_pitch = maf.dim;
      for (int l = 0; l < maf.hidden_layers; ++l) {
        float* act = b.acts + rows * l * maf.hidden_pad;
        general_matrix(impl, made, made.matrix[l], in, in_pitch, act, rows, true, stream);
        in = act;
        in_pitch = maf.hidden_pad;
      }
      general_matrix(impl, made, made.matrix[maf.hidden_layers], in, in_pitch, b.outs, rows, false,
                     stream);
      general_affine_kernel<<<grid, kRowsPerThreadBlock, 0, stream>>>(
          maf, d_made, impl.d_floats.data(), impl.d_ints.data(), out_pad, b);
      NFCAL_LAUNCH_CHECK();
    }
    general_finish_kernel<<<grid, kRowsPerThreadBlock, 0, stream>>>(maf, b, d_out + first);
    NFCAL_LAUNCH_CHECK();
  }
}

}  // namespace nfcal
