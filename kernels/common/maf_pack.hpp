// Packs a BasicMaf<float> into the flat buffers the row engine (common/maf_rows.hpp) reads:
// per MADE layer one float block of transposed, zero-masked, 4-padded matrices and biases,
// then batch-norm and standardization vectors; an int buffer of orders and prefixes; and one
// descriptor per layer. Host code only: the CUDA backend copies the result to the device,
// the CPU tests run the row engine on it directly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"

#include "common/maf_rows.hpp"

namespace nfcal::rows {

/// Batch-norm epsilon of the CPU backend (src/maf), repeated here so packing needs no
/// private header; the parity tests catch a mismatch.
constexpr double kPackBatchNormEpsilon = 1e-5;

struct PackedFlow {
  PackedMaf maf;
  std::vector<PackedMade> made;  // (layers)
  std::vector<float> floats;
  std::vector<int> ints;
};

/// Appends `count` zeros to v and returns the offset of the first, keeping 4-alignment.
template <typename V>
long long append_zeros(std::vector<V>& v, std::size_t count) {
  const long long offset = static_cast<long long>(v.size());
  v.resize(v.size() + (count + 3) / 4 * 4, V(0));
  return offset;
}

/// Packs one masked matrix: weight (units, in_dim) row-major, row r reading [0, prefix[r]).
inline PackedMatrix pack_matrix(const float* weight, const float* bias, int units, int in_dim,
                                const std::vector<int>& prefix, long long block_begin,
                                PackedFlow& flow) {
  PackedMatrix m;
  m.in_dim = in_dim;
  m.units = units;
  m.units_pad = round_up4(units);

  // Transposed, zero beyond each row's prefix, padded units all zero.
  const long long w = append_zeros(flow.floats, static_cast<std::size_t>(in_dim) * m.units_pad);
  for (int r = 0; r < units; ++r) {
    for (int c = 0; c < prefix[r]; ++c) {
      flow.floats[w + static_cast<long long>(c) * m.units_pad + r] =
          weight[static_cast<std::size_t>(r) * in_dim + c];
    }
  }
  const long long b = append_zeros(flow.floats, m.units_pad);
  std::copy(bias, bias + units, flow.floats.begin() + b);
  m.weight = static_cast<int>(w - block_begin);
  m.bias = static_cast<int>(b - block_begin);

  // Prefix per unit and the longest prefix of each group of four.
  m.prefix = static_cast<int>(append_zeros(flow.ints, m.units_pad));
  std::copy(prefix.begin(), prefix.end(), flow.ints.begin() + m.prefix);
  m.group_prefix = static_cast<int>(append_zeros(flow.ints, m.units_pad / kUnitGroup));
  for (int g = 0; g < m.units_pad / kUnitGroup; ++g) {
    int longest = 0;
    for (int j = 0; j < kUnitGroup && g * kUnitGroup + j < units; ++j) {
      longest = std::max(longest, prefix[g * kUnitGroup + j]);
    }
    flow.ints[m.group_prefix + g] = longest;
  }
  return m;
}

/// Packs MADE layer `index` of flow into its own block.
inline PackedMade pack_made(const BasicMaf<float>& maf, int index, PackedFlow& flow) {
  const MadeLayout& layout = maf.made_layers()[index];
  const auto& p = maf.parameters();
  const auto& t = maf.tensors();
  const int dim = maf.dim();
  PackedMade made;
  made.block = static_cast<long long>(flow.floats.size());

  // Hidden layers, then the output layer whose mu and raw rows share one prefix per k.
  int in_dim = dim;
  const int hidden_layers = static_cast<int>(layout.weights.size());
  for (int l = 0; l < hidden_layers; ++l) {
    const TensorSpec& w = t[layout.weights[l]];
    made.matrix[l] = pack_matrix(p.data() + w.offset, p.data() + t[layout.biases[l]].offset, w.rows,
                                 in_dim, layout.prefix[l], made.block, flow);
    in_dim = w.rows;
  }
  std::vector<int> out_prefix(layout.out_prefix);
  out_prefix.insert(out_prefix.end(), layout.out_prefix.begin(), layout.out_prefix.end());
  const TensorSpec& ow = t[layout.out_weight];
  made.matrix[hidden_layers] =
      pack_matrix(p.data() + ow.offset, p.data() + t[layout.out_bias].offset, 2 * dim, in_dim,
                  out_prefix, made.block, flow);
  made.block_floats = static_cast<int>(static_cast<long long>(flow.floats.size()) - made.block);

  // The order of this layer's inputs.
  made.order = static_cast<int>(append_zeros(flow.ints, dim));
  std::copy(layout.order.begin(), layout.order.end(), flow.ints.begin() + made.order);
  return made;
}

/// Folds evaluation-mode batch norm after layer `index` into z = a x + c; returns sum log a.
inline double pack_batch_norm(const BasicMaf<float>& maf, int index, PackedFlow& flow) {
  const BatchNormLayout& bn = maf.batch_norm_layers()[index];
  const auto& p = maf.parameters();
  const auto& t = maf.tensors();
  const int dim = maf.dim();
  PackedMade& made = flow.made[index];
  made.norm_scale = append_zeros(flow.floats, dim);
  made.norm_shift = append_zeros(flow.floats, dim);
  double log_det = 0;
  for (int c = 0; c < dim; ++c) {
    const double mean = maf.buffers()[bn.running_mean + c];
    const double var = maf.buffers()[bn.running_var + c];
    const double a = std::exp(static_cast<double>(p[t[bn.log_gamma].offset + c])) /
                     std::sqrt(var + kPackBatchNormEpsilon);
    flow.floats[made.norm_scale + c] = static_cast<float>(a);
    flow.floats[made.norm_shift + c] =
        static_cast<float>(static_cast<double>(p[t[bn.beta].offset + c]) - mean * a);
    log_det += std::log(a);
  }
  return log_det;
}

/// Packs a whole flow. Throws InvalidArgument when it has more hidden layers than the row
/// engine supports (kMaxHiddenLayers).
inline PackedFlow pack_flow(const BasicMaf<float>& maf) {
  const MafConfig& config = maf.config();
  if (config.hidden_layers < 1 || config.hidden_layers > kMaxHiddenLayers) {
    throw InvalidArgument("CUDA MAF: hidden_layers = " + std::to_string(config.hidden_layers) +
                          " is outside 1.." + std::to_string(kMaxHiddenLayers) +
                          "; use the CPU backend (--device cpu) for this flow");
  }
  PackedFlow flow;
  PackedMaf& m = flow.maf;
  m.dim = config.dim;
  m.layers = config.layers;
  m.hidden_layers = config.hidden_layers;
  m.hidden = config.hidden;
  m.hidden_pad = round_up4(config.hidden);
  m.activation = static_cast<int>(config.activation);
  m.bound = static_cast<float>(config.max_log_scale);

  // MADE blocks first, so each is contiguous; then the per-layer batch norms.
  for (int i = 0; i < config.layers; ++i) {
    flow.made.push_back(pack_made(maf, i, flow));
    m.max_block_floats = std::max(m.max_block_floats, flow.made.back().block_floats);
  }
  for (int i = 0; i < static_cast<int>(maf.batch_norm_layers().size()); ++i) {
    m.log_det_constant += pack_batch_norm(maf, i, flow);
  }

  // Standardization z = (x - shift) / scale, log|det| = -sum log scale.
  const Standardization& st = maf.standardization();
  if (st.active()) {
    m.std_shift = append_zeros(flow.floats, m.dim);
    m.std_scale = append_zeros(flow.floats, m.dim);
    for (int c = 0; c < m.dim; ++c) {
      flow.floats[m.std_shift + c] = static_cast<float>(st.shift[c]);
      flow.floats[m.std_scale + c] = static_cast<float>(st.scale[c]);
      m.log_det_constant -= std::log(st.scale[c]);
    }
  }
  return flow;
}

}  // namespace nfcal::rows
