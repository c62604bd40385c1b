// Sampling direction of the MAF on the CPU.
//
// The degree-ordered pass (docs/architecture.md): hidden units are sorted by degree, so once
// positions 0..k-1 of a layer's order are known, exactly the units of degree k become final.
// Step k computes those units in every hidden layer, then output k, then y_k. Every hidden unit
// is computed once per row, so a sampling pass costs about one density pass instead of D.
//
// Rows are processed in tiles held transposed ([unit][row]) so the inner loops run over rows
// with unit stride and the tile stays in cache through the D sequential steps.

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"

#include "common/maf_math.hpp"
#include "common/philox.hpp"
#include "maf/maf_internal.hpp"

namespace nfcal {

namespace {

constexpr int kSampleTileRows = 64;
constexpr std::size_t kNaiveTileRows = 1024;
// Weights (units x prefix) from which a degree's hidden units go through BLAS, not axpy loops.
constexpr long long kBlasGroupSize = 256;

// Always inlined, so the AVX2 entry point below compiles these loops with AVX2 and FMA.
#define NFCAL_TILE_INLINE inline __attribute__((always_inline))

// acc[r] += w * src[r] for one tile row vector.
template <typename T>
NFCAL_TILE_INLINE void axpy_rows(T w, const T* __restrict src, T* __restrict acc, int rows) {
  for (int r = 0; r < rows; ++r) acc[r] += w * src[r];
}

// mu[r] = mu_bias + sum_j mu_w[j] src[j][r] and the same for raw, over j < prefix, for the
// tile's rows. Blocks of kOutputBlock rows keep both sums in registers through the j loop,
// so each step loads its source row once and stores nothing until the block is done. A last
// partial block runs whole, into the tile's spare rows, so every row takes the same
// arithmetic wherever it sits in a tile (results must not depend on batch size).
constexpr int kOutputBlock = 16;
static_assert(kSampleTileRows % kOutputBlock == 0, "tiles hold whole output blocks");

template <typename T>
NFCAL_TILE_INLINE void output_rows(const T* __restrict mu_w, const T* __restrict raw_w, T mu_bias,
                                   T raw_bias, const T* __restrict src, int prefix, int rows,
                                   T* __restrict mu, T* __restrict raw) {
  const int stride = kSampleTileRows;
  for (int r0 = 0; r0 < rows; r0 += kOutputBlock) {
    T mu_acc[kOutputBlock], raw_acc[kOutputBlock];
    for (int r = 0; r < kOutputBlock; ++r) {
      mu_acc[r] = mu_bias;
      raw_acc[r] = raw_bias;
    }
    for (int j = 0; j < prefix; ++j) {
      const T* row = src + static_cast<std::size_t>(j) * stride + r0;
      for (int r = 0; r < kOutputBlock; ++r) {
        mu_acc[r] += mu_w[j] * row[r];
        raw_acc[r] += raw_w[j] * row[r];
      }
    }
    for (int r = 0; r < kOutputBlock; ++r) {
      mu[r0 + r] = mu_acc[r];
      raw[r0 + r] = raw_acc[r];
    }
  }
}

// Inverts one MADE layer for a tile of `rows` rows: z_out (rows, D) in data order is the
// layer's output, z_in (rows, D) receives its input.
template <typename T>
NFCAL_TILE_INLINE void invert_made_tile(const std::vector<T>& parameters,
                                        const std::vector<TensorSpec>& tensors,
                                        const MadeLayout& made, const MafConfig& config, int rows,
                                        const T* z_out, T* z_in, std::vector<T>& y_t,
                                        std::vector<std::vector<T>>& act_t, std::vector<T>& mu,
                                        std::vector<T>& raw) {
  const int dim = config.dim;
  const int activation = static_cast<int>(config.activation);
  const T bound = static_cast<T>(config.max_log_scale);
  const int hidden_layers = static_cast<int>(made.weights.size());
  const int hidden = tensors[made.weights[0]].rows;
  const std::vector<int>& degrees = made.hidden_degrees;
  const int stride = kSampleTileRows;

  y_t.assign(static_cast<std::size_t>(dim) * stride, T(0));
  act_t.resize(hidden_layers);
  for (auto& a : act_t) a.assign(static_cast<std::size_t>(hidden) * stride, T(0));
  mu.resize(stride);
  raw.resize(stride);

  const T* out_w = parameters.data() + tensors[made.out_weight].offset;
  const T* out_b = parameters.data() + tensors[made.out_bias].offset;
  int unit_begin = 0;
  for (int k = 0; k < dim; ++k) {
    // Hidden units of degree k read positions < k only, all known now.
    const int unit_end = static_cast<int>(
        std::upper_bound(degrees.begin() + unit_begin, degrees.end(), k) - degrees.begin());
    for (int l = 0; l < hidden_layers; ++l) {
      const TensorSpec& w_spec = tensors[made.weights[l]];
      const T* w = parameters.data() + w_spec.offset;
      const T* b = parameters.data() + tensors[made.biases[l]].offset;
      const T* src = l == 0 ? y_t.data() : act_t[l - 1].data();
      if (unit_begin == unit_end) continue;
      for (int h = unit_begin; h < unit_end; ++h) {
        T* acc = act_t[l].data() + static_cast<std::size_t>(h) * stride;
        std::fill(acc, acc + rows, b[h]);
      }

      // Units of one degree share their prefix, so together they are one small product
      // (units, prefix) x (prefix, rows); BLAS pays off once it is large enough.
      const int units = unit_end - unit_begin;
      const int prefix = made.prefix[l][unit_begin];
      T* group = act_t[l].data() + static_cast<std::size_t>(unit_begin) * stride;
      const T* w_group = w + static_cast<std::size_t>(unit_begin) * w_spec.cols;
      if (static_cast<long long>(units) * prefix >= kBlasGroupSize) {
        blas::raw_gemm_nn(units, rows, prefix, T(1), w_group, w_spec.cols, src, stride, T(1), group,
                          stride);
      } else {
        for (int h = 0; h < units; ++h) {
          const T* w_row = w_group + static_cast<std::size_t>(h) * w_spec.cols;
          T* acc = group + static_cast<std::size_t>(h) * stride;
          for (int j = 0; j < prefix; ++j) {
            axpy_rows(w_row[j], src + static_cast<std::size_t>(j) * stride, acc, rows);
          }
        }
      }
      for (int h = 0; h < units; ++h) {
        T* acc = group + static_cast<std::size_t>(h) * stride;
        detail::activate_array(acc, static_cast<std::size_t>(rows), activation, acc);
      }
    }
    unit_begin = unit_end;

    // Output k reads the last hidden layer's units of degree <= k.
    const T* last = act_t[hidden_layers - 1].data();
    const T* mu_w = out_w + static_cast<std::size_t>(k) * hidden;
    const T* raw_w = out_w + static_cast<std::size_t>(dim + k) * hidden;
    output_rows(mu_w, raw_w, out_b[k], out_b[dim + k], last, made.out_prefix[k], rows, mu.data(),
                raw.data());

    // The affine step inverted: position k of this layer's input.
    T* y_k = y_t.data() + static_cast<std::size_t>(k) * stride;
    const int column = made.order[k];
    for (int r = 0; r < rows; ++r) {
      const T alpha = maf_math::bounded_log_scale(raw[r], bound);
      y_k[r] = maf_math::affine_from_noise(z_out[r * dim + column], mu[r], alpha);
    }
  }

  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < dim; ++k) z_in[r * dim + made.order[k]] = y_t[k * stride + r];
  }
}

// Two builds of the tile step: one for any x86-64, one using AVX2 and FMA where the processor
// has them (chosen at run time), so portable binaries still run the wide vector loops.
template <typename T>
void invert_made_tile_portable(const std::vector<T>& parameters,
                               const std::vector<TensorSpec>& tensors, const MadeLayout& made,
                               const MafConfig& config, int rows, const T* z_out, T* z_in,
                               std::vector<T>& y_t, std::vector<std::vector<T>>& act_t,
                               std::vector<T>& mu, std::vector<T>& raw) {
  invert_made_tile(parameters, tensors, made, config, rows, z_out, z_in, y_t, act_t, mu, raw);
}

#if defined(__x86_64__) && defined(__GNUC__)
template <typename T>
__attribute__((target("avx2,fma"))) void invert_made_tile_avx2(
    const std::vector<T>& parameters, const std::vector<TensorSpec>& tensors,
    const MadeLayout& made, const MafConfig& config, int rows, const T* z_out, T* z_in,
    std::vector<T>& y_t, std::vector<std::vector<T>>& act_t, std::vector<T>& mu,
    std::vector<T>& raw) {
  invert_made_tile(parameters, tensors, made, config, rows, z_out, z_in, y_t, act_t, mu, raw);
}
#endif

template <typename T>
using TileFunction = void (*)(const std::vector<T>&, const std::vector<TensorSpec>&,
                              const MadeLayout&, const MafConfig&, int, const T*, T*,
                              std::vector<T>&, std::vector<std::vector<T>>&, std::vector<T>&,
                              std::vector<T>&);

template <typename T>
TileFunction<T> select_tile_function() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return &invert_made_tile_avx2<T>;
  }
#endif
  return &invert_made_tile_portable<T>;
}

// Inverts batch normalization (evaluation mode) in place on rows (n, D).
template <typename T>
void invert_batch_norm(const std::vector<T>& parameters, const std::vector<T>& buffers,
                       const std::vector<TensorSpec>& tensors, const BatchNormLayout& bn, int dim,
                       T* z, std::size_t n) {
  for (int d = 0; d < dim; ++d) {
    const double var = buffers[bn.running_var + d] + detail::kBatchNormEpsilon;
    const double scale = std::sqrt(var) * std::exp(-parameters[tensors[bn.log_gamma].offset + d]);
    const double beta = parameters[tensors[bn.beta].offset + d];
    const double mean = buffers[bn.running_mean + d];
    for (std::size_t i = 0; i < n; ++i) {
      z[i * dim + d] = static_cast<T>((z[i * dim + d] - beta) * scale + mean);
    }
  }
}

}  // namespace

template <typename T>
void BasicMaf<T>::inverse(const T* u, std::size_t n, T* x) const {
  const int dim = config_.dim;
  std::copy(u, u + n * dim, x);
  blas::use_single_threaded_blas();

  // Layers in reverse; each batch norm follows its MADE layer in the density direction.
  for (int layer = static_cast<int>(made_.size()) - 1; layer >= 0; --layer) {
    if (static_cast<std::size_t>(layer) < batch_norm_.size()) {
      invert_batch_norm(parameters_, buffers_, tensors_, batch_norm_[layer], dim, x, n);
    }
    const std::ptrdiff_t tiles =
        static_cast<std::ptrdiff_t>((n + kSampleTileRows - 1) / kSampleTileRows);
    static const TileFunction<T> invert_tile = select_tile_function<T>();
#pragma omp parallel if (tiles > 1)
    {
      std::vector<T> y_t, mu, raw, z_out(static_cast<std::size_t>(kSampleTileRows) * dim);
      std::vector<std::vector<T>> act_t;
#pragma omp for schedule(dynamic, 4)
      for (std::ptrdiff_t tile = 0; tile < tiles; ++tile) {
        const std::size_t first = static_cast<std::size_t>(tile) * kSampleTileRows;
        const int rows = static_cast<int>(std::min<std::size_t>(kSampleTileRows, n - first));
        T* z = x + first * dim;
        std::copy(z, z + static_cast<std::size_t>(rows) * dim, z_out.begin());
        invert_tile(parameters_, tensors_, made_[layer], config_, rows, z_out.data(), z, y_t, act_t,
                    mu, raw);
      }
    }
  }

  standardization_.to_user_units(x, n, dim);
}

template <typename T>
void BasicMaf<T>::inverse_naive(const T* u, std::size_t n, T* x) const {
  const int dim = config_.dim;
  const int activation = static_cast<int>(config_.activation);
  const T bound = static_cast<T>(config_.max_log_scale);
  std::copy(u, u + n * dim, x);

  detail::MadeTile<T> tile;
  std::vector<T> y;
  for (int layer = static_cast<int>(made_.size()) - 1; layer >= 0; --layer) {
    if (static_cast<std::size_t>(layer) < batch_norm_.size()) {
      invert_batch_norm(parameters_, buffers_, tensors_, batch_norm_[layer], dim, x, n);
    }
    const MadeLayout& made = made_[layer];
    const detail::MadeBands bands = detail::make_made_bands(made);

    // D full network passes: pass t fixes position t from the outputs of the previous ones.
    for (std::size_t first = 0; first < n; first += kNaiveTileRows) {
      const int rows = static_cast<int>(std::min(kNaiveTileRows, n - first));
      T* z = x + first * dim;
      y.assign(static_cast<std::size_t>(rows) * dim, T(0));
      for (int t = 0; t < dim; ++t) {
        detail::made_forward(parameters_, tensors_, made, bands, activation, dim, y.data(), rows,
                             tile);
        for (int r = 0; r < rows; ++r) {
          const T* out = tile.out.data() + static_cast<std::size_t>(r) * 2 * dim;
          const T alpha = maf_math::bounded_log_scale(out[dim + t], bound);
          y[r * dim + t] = maf_math::affine_from_noise(z[r * dim + made.order[t]], out[t], alpha);
        }
      }
      for (int r = 0; r < rows; ++r) {
        for (int k = 0; k < dim; ++k) z[r * dim + made.order[k]] = y[r * dim + k];
      }
    }
  }

  standardization_.to_user_units(x, n, dim);
}

template <typename T>
Matrix<T> BasicMaf<T>::base_noise(std::size_t n, int dim, std::uint64_t seed,
                                  std::uint64_t first_row) {
  Matrix<T> noise(n, static_cast<std::size_t>(dim));
  const int blocks = (dim + 3) / 4;
#pragma omp parallel for schedule(static) if (n * dim > 65536)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
    T* row = noise.row(static_cast<std::size_t>(i));
    for (int block = 0; block < blocks; ++block) {
      float values[4];
      rng::keyed_normals4(seed, first_row + static_cast<std::uint64_t>(i),
                          static_cast<std::uint32_t>(block), rng::kStreamBaseNoise, values);
      for (int j = 0; j < 4 && 4 * block + j < dim; ++j) row[4 * block + j] = values[j];
    }
  }
  return noise;
}

template <typename T>
Matrix<T> BasicMaf<T>::sample(std::size_t n, std::uint64_t seed, std::uint64_t first_row) const {
  const Matrix<T> noise = base_noise(n, config_.dim, seed, first_row);
  Matrix<T> x(n, static_cast<std::size_t>(config_.dim));
  inverse(noise.data(), n, x.data());
  return x;
}

template void BasicMaf<float>::inverse(const float*, std::size_t, float*) const;
template void BasicMaf<double>::inverse(const double*, std::size_t, double*) const;
template void BasicMaf<float>::inverse_naive(const float*, std::size_t, float*) const;
template void BasicMaf<double>::inverse_naive(const double*, std::size_t, double*) const;
template Matrix<float> BasicMaf<float>::base_noise(std::size_t, int, std::uint64_t, std::uint64_t);
template Matrix<double> BasicMaf<double>::base_noise(std::size_t, int, std::uint64_t,
                                                     std::uint64_t);
template Matrix<float> BasicMaf<float>::sample(std::size_t, std::uint64_t, std::uint64_t) const;
template Matrix<double> BasicMaf<double>::sample(std::size_t, std::uint64_t, std::uint64_t) const;

}  // namespace nfcal
