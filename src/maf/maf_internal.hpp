// Building blocks of the CPU MAF shared by density, sampling and gradient code: masked
// products that skip the zero blocks of degree-sorted weights, and the MADE forward pass over
// a tile of rows.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "nfcal/maf.hpp"

#include "common/maf_math.hpp"
#include "maf/activation.hpp"
#include "maf/blas.hpp"

namespace nfcal::detail {

constexpr double kBatchNormEpsilon = 1e-5;

/// Rows [row_begin, row_end) of a masked matrix all read only columns [0, cols).
struct Band {
  int row_begin = 0;
  int row_end = 0;
  int cols = 0;
};

/// Splits rows with non-decreasing prefix lengths into at most max_bands bands of equal row
/// count; each band reads up to the longest prefix inside it. More bands skip more zeros but
/// make smaller products.
inline std::vector<Band> make_bands(const std::vector<int>& prefix, int max_bands) {
  std::vector<Band> bands;
  const int rows = static_cast<int>(prefix.size());
  const int count = std::max(1, std::min(max_bands, rows));
  for (int b = 0; b < count; ++b) {
    const int begin = static_cast<int>(static_cast<long long>(rows) * b / count);
    const int end = static_cast<int>(static_cast<long long>(rows) * (b + 1) / count);
    if (begin == end) continue;
    bands.push_back({begin, end, prefix[end - 1]});
  }
  return bands;
}

/// out (n, rows) = in (n, :cols) * weight^T + bias, band by band, where weight is
/// (rows, weight_cols) row-major. Bands with no columns leave out = bias.
template <typename T>
void masked_product(const T* in, int n, int in_stride, const T* weight, int weight_cols,
                    const T* bias, const std::vector<Band>& bands, T* out, int out_stride) {
  // Bias first, so each band's product accumulates onto it.
  for (int r = 0; r < n; ++r) {
    T* out_row = out + static_cast<std::size_t>(r) * out_stride;
    for (const Band& band : bands) {
      std::copy(bias + band.row_begin, bias + band.row_end, out_row + band.row_begin);
    }
  }

  for (const Band& band : bands) {
    if (band.cols == 0) continue;
    blas::gemm_nt(n, band.row_end - band.row_begin, band.cols, T(1), in, in_stride,
                  weight + static_cast<std::size_t>(band.row_begin) * weight_cols, weight_cols,
                  T(1), out + band.row_begin, out_stride);
  }
}

/// post (n, width) = activate(pre), split over threads by fixed row blocks when large.
template <typename T>
void activate_rows(const T* pre, int n, int width, int activation, T* post) {
  constexpr int kRowsPerBlock = 256;
  const int blocks = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  const bool parallel =
      blocks > 1 && static_cast<long long>(n) * width > 65536 && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (parallel)
  for (int block = 0; block < blocks; ++block) {
    const int first = block * kRowsPerBlock;
    const int rows = std::min(kRowsPerBlock, n - first);
    const std::size_t offset = static_cast<std::size_t>(first) * width;
    activate_array(pre + offset, static_cast<std::size_t>(rows) * width, activation, post + offset);
  }
}

/// Masks and bands of one MADE layer, derived once from its layout.
struct MadeBands {
  std::vector<std::vector<Band>> hidden;  // per hidden layer
  std::vector<Band> output;               // for the mu rows; the scale rows reuse it
};

/// Bands of about 64 rows or more, at most 8: small matrices gain nothing from splitting.
inline MadeBands make_made_bands(const MadeLayout& layout) {
  auto band_count = [](std::size_t rows) {
    return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(8, rows / 64)));
  };
  MadeBands bands;
  for (const auto& prefix : layout.prefix) {
    bands.hidden.push_back(make_bands(prefix, band_count(prefix.size())));
  }
  bands.output = make_bands(layout.out_prefix, band_count(layout.out_prefix.size()));
  return bands;
}

/// Activations of one MADE pass over a tile; pre-activations kept for backpropagation.
template <typename T>
struct MadeTile {
  std::vector<std::vector<T>> pre;   // per hidden layer, (n, hidden)
  std::vector<std::vector<T>> post;  // per hidden layer, (n, hidden)
  std::vector<T> out;                // (n, 2D): mu then raw scale
};

/// Runs one MADE network on y (n, D) in the layer's order, filling tile.
template <typename T>
void made_forward(const std::vector<T>& parameters, const std::vector<TensorSpec>& tensors,
                  const MadeLayout& layout, const MadeBands& bands, int activation, int dim,
                  const T* y, int n, MadeTile<T>& tile) {
  const int hidden_layers = static_cast<int>(layout.weights.size());
  tile.pre.resize(hidden_layers);
  tile.post.resize(hidden_layers);

  // Hidden layers: masked product, then the nonlinearity.
  const T* input = y;
  int input_width = dim;
  for (int l = 0; l < hidden_layers; ++l) {
    const TensorSpec& weight = tensors[layout.weights[l]];
    const TensorSpec& bias = tensors[layout.biases[l]];
    const int hidden = weight.rows;
    auto& pre = tile.pre[l];
    auto& post = tile.post[l];
    pre.resize(static_cast<std::size_t>(n) * hidden);
    post.resize(pre.size());
    masked_product(input, n, input_width, parameters.data() + weight.offset, weight.cols,
                   parameters.data() + bias.offset, bands.hidden[l], pre.data(), hidden);
    activate_rows(pre.data(), n, hidden, activation, post.data());
    input = post.data();
    input_width = hidden;
  }

  // Outputs: mu rows and raw-scale rows share the same prefixes.
  const TensorSpec& out_weight = tensors[layout.out_weight];
  const TensorSpec& out_bias = tensors[layout.out_bias];
  const int hidden = out_weight.cols;
  tile.out.resize(static_cast<std::size_t>(n) * 2 * dim);
  const T* w = parameters.data() + out_weight.offset;
  const T* b = parameters.data() + out_bias.offset;
  masked_product(input, n, hidden, w, hidden, b, bands.output, tile.out.data(), 2 * dim);
  masked_product(input, n, hidden, w + static_cast<std::size_t>(dim) * hidden, hidden, b + dim,
                 bands.output, tile.out.data() + dim, 2 * dim);
}

}  // namespace nfcal::detail
