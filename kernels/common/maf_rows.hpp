// One row of a MAF at a time: the arithmetic of the CUDA density and sampling kernels, written
// once as NFCAL_HD functions so the CPU tests run exactly what a GPU thread runs.
//
// The flow is first packed (common/maf_pack.hpp) into one float buffer and one int buffer.
// Each MADE layer is a contiguous block of floats, so a kernel can copy it into shared memory
// with one loop; inside the block every masked matrix is stored transposed, (in_dim,
// units_pad), with its masked-out weights set to zero and its unit count padded to a multiple
// of 4, so four units are updated per loaded input value. Hidden units are sorted by degree,
// so unit j reads inputs [0, prefix[j]): the products stop there and skip the zero blocks.
//
// A row's state lives in strided vectors: element c of a row sits at base[c * stride]. A GPU
// thread uses stride = rows per block (shared memory, conflict-free: neighbouring threads own
// neighbouring words); the CPU tests and the cuBLAS path use stride 1 on row-major data.
#pragma once

#include <cstdint>

#include "common/host_device.hpp"
#include "common/maf_math.hpp"
#include "common/philox.hpp"

namespace nfcal::rows {

constexpr int kMaxHiddenLayers = 4;
constexpr int kMaxMatrices = kMaxHiddenLayers + 1;  // hidden layers, then the output layer
constexpr int kUnitGroup = 4;                       // units updated together

/// One masked matrix of a MADE layer inside the packed buffers.
struct PackedMatrix {
  int weight = 0;        // floats from the layer block start: (in_dim, units_pad), transposed
  int bias = 0;          // floats from the layer block start: (units_pad)
  int in_dim = 0;        // inputs read (D for the first hidden layer, else hidden)
  int units = 0;         // real output units (hidden, or 2D for the output layer)
  int units_pad = 0;     // units rounded up to kUnitGroup
  int prefix = 0;        // ints offset: (units_pad) inputs read by each unit, 0 for padding
  int group_prefix = 0;  // ints offset: (units_pad / 4) the longest prefix of each group
};

/// One MADE layer and the batch normalization that follows it, if any.
struct PackedMade {
  PackedMatrix matrix[kMaxMatrices];  // hidden layers 0..L-1, then the output at index L
  long long block = 0;                // floats offset of this layer's block
  int block_floats = 0;               // block size, a multiple of 4
  int order = 0;                      // ints offset: (D) data column of each ordered position
  long long norm_scale = -1;          // floats offset of (D) batch-norm scale a, or -1
  long long norm_shift = -1;          // floats offset of (D) batch-norm shift c: z = a x + c
};

/// Flow-wide facts every kernel needs; small enough to pass by value.
struct PackedMaf {
  int dim = 0;
  int layers = 0;
  int hidden_layers = 0;
  int hidden = 0;
  int hidden_pad = 0;
  int activation = 0;           // maf_math::ActivationCode
  float bound = 6.0f;           // B in alpha = B tanh(raw / B)
  int max_block_floats = 0;     // largest layer block
  long long std_shift = -1;     // floats offset of (D) standardization shift, or -1
  long long std_scale = -1;     // floats offset of (D) standardization scale
  double log_det_constant = 0;  // -sum log scale of standardization + batch-norm log dets
};

/// Strided per-row state: element c of a vector is at base[c * stride].
struct RowState {
  float* x = nullptr;     // (D) data-column space, updated layer by layer
  float* y = nullptr;     // (D) the layer's input in its order
  float* acts = nullptr;  // (hidden_layers * hidden_pad) hidden activations
  float* outs = nullptr;  // (2D padded to 4) mu then raw scale, density direction only
  int stride = 1;
};

/// Where one layer's weights and index arrays are read from (shared or global memory).
struct LayerView {
  const float* block = nullptr;  // the layer's float block
  const int* ints = nullptr;     // the whole int buffer
  const PackedMade* made = nullptr;
};

NFCAL_HD int round_up4(int n) { return (n + 3) / 4 * 4; }

/// Floats of one row's state: x and y (D each, padded to 4), activations, outputs (2D).
NFCAL_HD int state_floats(const PackedMaf& m) {
  return 2 * round_up4(m.dim) + m.hidden_layers * m.hidden_pad + round_up4(2 * m.dim);
}

/// The state of the row whose x[0] is at base, its elements `stride` floats apart.
NFCAL_HD RowState strided_state(const PackedMaf& m, float* base, int stride) {
  RowState s;
  s.stride = stride;
  s.x = base;
  s.y = base + round_up4(m.dim) * stride;
  s.acts = s.y + round_up4(m.dim) * stride;
  s.outs = s.acts + m.hidden_layers * m.hidden_pad * stride;
  return s;
}

/// Four consecutive floats; one 16-byte load on the device (p must be 16-byte aligned).
NFCAL_HD void load4(const float* p, float out[4]) {
#if defined(__CUDA_ARCH__)
  const float4 v = *reinterpret_cast<const float4*>(p);
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
#else
  for (int j = 0; j < 4; ++j) out[j] = p[j];
#endif
}

/// out[u] = activation(bias[u] + sum_{c < prefix} in[c] w[c][u]) for unit groups [g0, g1).
/// With activate false the affine value is stored (the output layer).
NFCAL_HD void masked_groups(const LayerView& view, const PackedMatrix& m, const float* in,
                            float* out, int stride, int activation, bool activate, int g0, int g1) {
  const float* w = view.block + m.weight;
  const float* b = view.block + m.bias;
  const int* group_prefix = view.ints + m.group_prefix;
  for (int g = g0; g < g1; ++g) {
    // Bias first; then the inputs this group can see, four units per loaded value.
    float acc[4];
    load4(b + g * kUnitGroup, acc);
    const int cols = group_prefix[g];
    for (int c = 0; c < cols; ++c) {
      float wv[4];
      load4(w + c * m.units_pad + g * kUnitGroup, wv);
      const float a = in[c * stride];
      for (int j = 0; j < 4; ++j) acc[j] = fmaf(a, wv[j], acc[j]);
    }

    // Store, through the nonlinearity for hidden layers.
    for (int j = 0; j < 4; ++j) {
      const float v = activate ? maf_math::activate(acc[j], activation) : acc[j];
      out[(g * kUnitGroup + j) * stride] = v;
    }
  }
}

/// The single unit `unit` of a masked matrix, for the sampling pass.
NFCAL_HD float masked_unit(const LayerView& view, const PackedMatrix& m, const float* in,
                           int stride, int unit) {
  const float* w = view.block + m.weight + unit;
  float acc = view.block[m.bias + unit];
  const int cols = view.ints[m.prefix + unit];
  for (int c = 0; c < cols; ++c) acc = fmaf(in[c * stride], w[c * m.units_pad], acc);
  return acc;
}

/// Standardizes a row in place: z = (x - shift) / scale.
NFCAL_HD void standardize_row(const PackedMaf& maf, const float* floats, const RowState& s) {
  if (maf.std_shift < 0) return;
  for (int c = 0; c < maf.dim; ++c) {
    float& v = s.x[c * s.stride];
    v = (v - floats[maf.std_shift + c]) / floats[maf.std_scale + c];
  }
}

/// Undoes standardize_row: x = z * scale + shift.
NFCAL_HD void unstandardize_row(const PackedMaf& maf, const float* floats, const RowState& s) {
  if (maf.std_shift < 0) return;
  for (int c = 0; c < maf.dim; ++c) {
    float& v = s.x[c * s.stride];
    v = fmaf(v, floats[maf.std_scale + c], floats[maf.std_shift + c]);
  }
}

/// Evaluation-mode batch normalization after layer `made`: z = a x + c. Its log-determinant
/// is a constant of the flow, folded into PackedMaf::log_det_constant.
NFCAL_HD void batch_norm_row(const PackedMaf& maf, const PackedMade& made, const float* floats,
                             const RowState& s) {
  if (made.norm_scale < 0) return;
  for (int c = 0; c < maf.dim; ++c) {
    float& v = s.x[c * s.stride];
    v = fmaf(floats[made.norm_scale + c], v, floats[made.norm_shift + c]);
  }
}

/// Undoes batch_norm_row: x = (z - c) / a.
NFCAL_HD void batch_norm_inverse_row(const PackedMaf& maf, const PackedMade& made,
                                     const float* floats, const RowState& s) {
  if (made.norm_scale < 0) return;
  for (int c = 0; c < maf.dim; ++c) {
    float& v = s.x[c * s.stride];
    v = (v - floats[made.norm_shift + c]) / floats[made.norm_scale + c];
  }
}

/// Gathers the layer's input in its order: y[k] = x[order[k]].
NFCAL_HD void gather_ordered(const PackedMaf& maf, const LayerView& view, const RowState& s) {
  const int* order = view.ints + view.made->order;
  for (int k = 0; k < maf.dim; ++k) s.y[k * s.stride] = s.x[order[k] * s.stride];
}

/// The affine step of the density direction from the MADE outputs in s.outs:
/// x[order[k]] = (y_k - mu_k) exp(-alpha_k). Returns -sum_k alpha_k.
NFCAL_HD double affine_density_row(const PackedMaf& maf, const LayerView& view, const RowState& s) {
  const int* order = view.ints + view.made->order;
  double log_det = 0;
  for (int k = 0; k < maf.dim; ++k) {
    const float mu = s.outs[k * s.stride];
    const float raw = s.outs[(maf.dim + k) * s.stride];
    const float alpha = maf_math::bounded_log_scale(raw, maf.bound);
    s.x[order[k] * s.stride] = maf_math::affine_to_noise(s.y[k * s.stride], mu, alpha);
    log_det -= alpha;
  }
  return log_det;
}

/// One MADE layer in the density direction: all hidden layers and both outputs in one go.
/// Returns the layer's log|det| = -sum alpha; x is replaced by the layer's noise.
NFCAL_HD double made_density_row(const PackedMaf& maf, const LayerView& view, const RowState& s) {
  gather_ordered(maf, view, s);

  // Hidden layers, each reading the previous one's activations.
  const float* in = s.y;
  for (int l = 0; l < maf.hidden_layers; ++l) {
    const PackedMatrix& m = view.made->matrix[l];
    float* out = s.acts + l * maf.hidden_pad * s.stride;
    masked_groups(view, m, in, out, s.stride, maf.activation, true, 0, m.units_pad / kUnitGroup);
    in = out;
  }

  // Outputs: mu and raw scale, then the affine step.
  const PackedMatrix& out = view.made->matrix[maf.hidden_layers];
  masked_groups(view, out, in, s.outs, s.stride, maf.activation, false, 0,
                out.units_pad / kUnitGroup);
  return affine_density_row(maf, view, s);
}

/// Final log density from the base noise in s.x and the accumulated log-determinants.
NFCAL_HD double base_log_density_row(const PackedMaf& maf, const RowState& s, double log_det) {
  double squared = 0;
  for (int c = 0; c < maf.dim; ++c) {
    const double u = s.x[c * s.stride];
    squared += u * u;
  }
  return maf_math::standard_normal_log_density(squared, maf.dim) + log_det + maf.log_det_constant;
}

/// Fills s.x with the base noise of row `row`: keyed by (seed, row) in the base-noise stream,
/// four values per Philox block, exactly as the CPU's BasicMaf::base_noise.
NFCAL_HD void base_noise_row(const PackedMaf& maf, std::uint64_t seed, std::uint64_t row,
                             const RowState& s) {
  for (int block = 0; block * 4 < maf.dim; ++block) {
    float z[4];
    rng::keyed_normals4(seed, row, static_cast<std::uint32_t>(block), rng::kStreamBaseNoise, z);
    for (int j = 0; j < 4 && block * 4 + j < maf.dim; ++j) s.x[(block * 4 + j) * s.stride] = z[j];
  }
}

/// Hidden unit counts computed so far, per hidden layer, in the degree-ordered pass.
struct Frontier {
  int done[kMaxHiddenLayers];
};

/// Extends every hidden layer by the units that known inputs now determine: layer 0 units
/// reading only y[0..known), layer l units reading only finished units of layer l-1.
NFCAL_HD void advance_frontier(const PackedMaf& maf, const LayerView& view, const RowState& s,
                               int known, Frontier* f) {
  const float* in = s.y;
  int available = known;
  for (int l = 0; l < maf.hidden_layers; ++l) {
    const PackedMatrix& m = view.made->matrix[l];
    const int* prefix = view.ints + m.prefix;
    float* out = s.acts + l * maf.hidden_pad * s.stride;
    while (f->done[l] < m.units && prefix[f->done[l]] <= available) {
      const int unit = f->done[l];
      const float z = masked_unit(view, m, in, s.stride, unit);
      out[unit * s.stride] = maf_math::activate(z, maf.activation);
      ++f->done[l];
    }
    in = out;
    available = f->done[l];
  }
}

/// One MADE layer in the sampling direction, degree-ordered: y_k = u_k exp(alpha_k) + mu_k
/// for k = 0..D-1, computing each hidden unit once, as soon as its inputs are known.
/// s.x holds the layer's noise on entry (data-column space) and its output on return.
NFCAL_HD void made_inverse_row(const PackedMaf& maf, const LayerView& view, const RowState& s) {
  const int* order = view.ints + view.made->order;
  const PackedMatrix& out = view.made->matrix[maf.hidden_layers];
  const float* last =
      maf.hidden_layers > 0 ? s.acts + (maf.hidden_layers - 1) * maf.hidden_pad * s.stride : s.y;
  Frontier f{};
  for (int k = 0; k < maf.dim; ++k) {
    // The units that y[0..k) determine, then output k from them.
    advance_frontier(maf, view, s, k, &f);
    const float mu = masked_unit(view, out, last, s.stride, k);
    const float raw = masked_unit(view, out, last, s.stride, maf.dim + k);
    const float alpha = maf_math::bounded_log_scale(raw, maf.bound);
    const float u = s.x[order[k] * s.stride];
    s.y[k * s.stride] = maf_math::affine_from_noise(u, mu, alpha);
  }

  // Back to data-column space.
  for (int k = 0; k < maf.dim; ++k) s.x[order[k] * s.stride] = s.y[k * s.stride];
}

/// The same map by D full passes of the network (the textbook method), for comparison.
NFCAL_HD void made_inverse_row_naive(const PackedMaf& maf, const LayerView& view,
                                     const RowState& s) {
  const int* order = view.ints + view.made->order;
  const PackedMatrix& out = view.made->matrix[maf.hidden_layers];
  const float* last =
      maf.hidden_layers > 0 ? s.acts + (maf.hidden_layers - 1) * maf.hidden_pad * s.stride : s.y;
  for (int k = 0; k < maf.dim; ++k) s.y[k * s.stride] = 0.0f;
  for (int k = 0; k < maf.dim; ++k) {
    // A whole forward pass from the inputs known so far (the rest are still zero).
    const float* in = s.y;
    for (int l = 0; l < maf.hidden_layers; ++l) {
      const PackedMatrix& m = view.made->matrix[l];
      float* act = s.acts + l * maf.hidden_pad * s.stride;
      masked_groups(view, m, in, act, s.stride, maf.activation, true, 0, m.units_pad / kUnitGroup);
      in = act;
    }
    const float mu = masked_unit(view, out, last, s.stride, k);
    const float raw = masked_unit(view, out, last, s.stride, maf.dim + k);
    const float alpha = maf_math::bounded_log_scale(raw, maf.bound);
    s.y[k * s.stride] = maf_math::affine_from_noise(s.x[order[k] * s.stride], mu, alpha);
  }
  for (int k = 0; k < maf.dim; ++k) s.x[order[k] * s.stride] = s.y[k * s.stride];
}

}  // namespace nfcal::rows
