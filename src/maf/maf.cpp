// The MAF on the CPU: configuration, parameter layout, initialization, and the density pass.
// Sampling lives in maf_sample.cpp, the training gradient in maf_gradient.cpp.

#include "nfcal/maf.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "nfcal/error.hpp"

#include "common/maf_math.hpp"
#include "common/philox.hpp"
#include "maf/maf_internal.hpp"

extern "C" void openblas_set_num_threads(int threads);

namespace nfcal {

namespace {

// Rows per tile in the density pass: large enough for BLAS to run at speed, small enough
// that a tile's activations stay in cache and tiles spread over threads.
constexpr std::size_t kDensityTileRows = 512;

}  // namespace

// --- Configuration ------------------------------------------------------------------------

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return "relu";
    case Activation::kTanh:
      return "tanh";
    case Activation::kElu:
      return "elu";
  }
  return "unknown";
}

std::string to_string(Ordering ordering) {
  return ordering == Ordering::kReversed ? "reversed" : "random";
}

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  if (name == "elu") return Activation::kElu;
  throw InvalidArgument("activation '" + name + "': expected relu, tanh or elu");
}

Ordering parse_ordering(const std::string& name) {
  if (name == "reversed") return Ordering::kReversed;
  if (name == "random") return Ordering::kRandom;
  throw InvalidArgument("ordering '" + name + "': expected reversed or random");
}

void MafConfig::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw InvalidArgument("MAF configuration: " + message);
  };
  require(dim >= 1, "dim must be at least 1, got " + std::to_string(dim));
  require(dim <= 1 << 20, "dim " + std::to_string(dim) + " is too large");
  require(layers >= 1 && layers <= 1000,
          "layers must be in 1..1000, got " + std::to_string(layers));
  require(hidden >= 1 && hidden <= 1 << 16,
          "hidden must be in 1..65536, got " + std::to_string(hidden));
  require(hidden_layers >= 1 && hidden_layers <= 16,
          "hidden_layers must be in 1..16, got " + std::to_string(hidden_layers));
  // e^30 per layer already spans 13 orders of magnitude; far larger bounds overflow float.
  require(max_log_scale > 0 && max_log_scale <= 30,
          "max_log_scale must be in (0, 30], got " + std::to_string(max_log_scale));
}

bool MafConfig::operator==(const MafConfig& other) const {
  return dim == other.dim && layers == other.layers && hidden == other.hidden &&
         hidden_layers == other.hidden_layers && activation == other.activation &&
         ordering == other.ordering && batch_norm == other.batch_norm &&
         max_log_scale == other.max_log_scale && seed == other.seed;
}

// --- Threads ------------------------------------------------------------------------------

void check_thread_count(int threads) {
  if (threads < 0 || threads > kMaxThreads) {
    throw InvalidArgument("threads must be 0 (all cores) or between 1 and " +
                          std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
  }
}

void set_num_threads(int threads) {
  check_thread_count(threads);
  const int count = threads == 0 ? omp_get_num_procs() : threads;
  omp_set_num_threads(count);
  openblas_set_num_threads(1);  // nfcal shares work itself; see maf/blas.hpp
}

int num_threads() { return omp_get_max_threads(); }

// --- Layout and initialization --------------------------------------------------------------

template <typename T>
BasicMaf<T>::BasicMaf(const MafConfig& config) : config_(config) {
  config_.validate();
  build_layout();
  initialize_weights();
}

template <typename T>
void BasicMaf<T>::build_layout() {
  const int dim = config_.dim;
  const int hidden = config_.hidden;
  std::size_t offset = 0;
  auto add_tensor = [&](const std::string& name, int rows, int cols) {
    tensors_.push_back(TensorSpec{name, offset, rows, cols});
    offset += static_cast<std::size_t>(rows) * cols;
    return static_cast<int>(tensors_.size()) - 1;
  };

  // Hidden degrees are the same in every layer; only the order of the inputs changes.
  std::vector<int> degrees(hidden);
  for (int h = 0; h < hidden; ++h) degrees[h] = maf_math::hidden_degree(h, hidden, dim);

  std::vector<int> order(dim);
  std::iota(order.begin(), order.end(), 0);
  for (int layer = 0; layer < config_.layers; ++layer) {
    // Orders: reversed from layer to layer, or a fresh seeded permutation per layer.
    if (config_.ordering == Ordering::kReversed) {
      if (layer > 0) std::reverse(order.begin(), order.end());
    } else {
      std::iota(order.begin(), order.end(), 0);
      for (int i = dim - 1; i > 0; --i) {
        const auto word = rng::keyed_words(config_.seed, static_cast<std::uint64_t>(i),
                                           static_cast<std::uint32_t>(layer), rng::kStreamInit);
        std::swap(order[i], order[word.w[0] % static_cast<std::uint32_t>(i + 1)]);
      }
    }

    MadeLayout made;
    made.order = order;
    made.hidden_degrees = degrees;
    const std::string prefix_name = "layer" + std::to_string(layer) + ".made.";
    for (int l = 0; l < config_.hidden_layers; ++l) {
      const int cols = l == 0 ? dim : hidden;
      made.weights.push_back(
          add_tensor(prefix_name + "hidden" + std::to_string(l) + ".weight", hidden, cols));
      made.biases.push_back(
          add_tensor(prefix_name + "hidden" + std::to_string(l) + ".bias", hidden, 1));

      // Input position k has degree k + 1, so a unit of degree d reads positions 0..d-1;
      // between hidden layers a unit reads every unit of degree <= its own.
      std::vector<int> prefix(hidden);
      for (int h = 0; h < hidden; ++h) {
        prefix[h] =
            l == 0 ? std::min(degrees[h], dim)
                   : static_cast<int>(std::upper_bound(degrees.begin(), degrees.end(), degrees[h]) -
                                      degrees.begin());
      }
      made.prefix.push_back(prefix);
    }
    made.out_weight = add_tensor(prefix_name + "output.weight", 2 * dim, hidden);
    made.out_bias = add_tensor(prefix_name + "output.bias", 2 * dim, 1);

    // Output k has degree k + 1 and reads the units of degree <= k.
    made.out_prefix.resize(dim);
    for (int k = 0; k < dim; ++k) {
      made.out_prefix[k] =
          static_cast<int>(std::upper_bound(degrees.begin(), degrees.end(), k) - degrees.begin());
    }
    made_.push_back(std::move(made));

    // Batch normalization between MADE layers (not after the last).
    if (config_.batch_norm && layer + 1 < config_.layers) {
      BatchNormLayout bn;
      const std::string bn_name = "layer" + std::to_string(layer) + ".batch_norm.";
      bn.log_gamma = add_tensor(bn_name + "log_gamma", dim, 1);
      bn.beta = add_tensor(bn_name + "beta", dim, 1);
      bn.running_mean = static_cast<std::size_t>(batch_norm_.size()) * 2 * dim;
      bn.running_var = bn.running_mean + dim;
      batch_norm_.push_back(bn);
    }
  }
  parameters_.assign(offset, T(0));
  buffers_.assign(batch_norm_.size() * 2 * static_cast<std::size_t>(dim), T(0));
  for (const auto& bn : batch_norm_) {
    std::fill_n(buffers_.begin() + static_cast<std::ptrdiff_t>(bn.running_var), dim, T(1));
  }
}

template <typename T>
void BasicMaf<T>::initialize_weights() {
  // Hidden weights: uniform in +-1/sqrt(fan-in) over the unmasked entries, keyed by the
  // parameter's index so the values do not depend on T. Output layer and biases stay zero:
  // the fresh flow is the identity.
  for (const MadeLayout& made : made_) {
    for (std::size_t l = 0; l < made.weights.size(); ++l) {
      const TensorSpec& weight = tensors_[made.weights[l]];
      for (int r = 0; r < weight.rows; ++r) {
        const int fan_in = std::max(made.prefix[l][r], 1);
        const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
        for (int c = 0; c < made.prefix[l][r]; ++c) {
          const std::size_t index = weight.offset + static_cast<std::size_t>(r) * weight.cols + c;
          const float u = rng::keyed_uniform(config_.seed, index, rng::kStreamInit);
          parameters_[index] = static_cast<T>((2.0 * u - 1.0) * bound);
        }
      }
    }
  }
}

template <typename T>
void BasicMaf<T>::set_standardization(Standardization standardization) {
  const std::size_t dim = static_cast<std::size_t>(config_.dim);
  if (standardization.active()) {
    if (standardization.shift.size() != dim || standardization.scale.size() != dim) {
      throw InvalidArgument("standardization: expected " + std::to_string(dim) +
                            " shifts and scales, got " +
                            std::to_string(standardization.shift.size()) + " and " +
                            std::to_string(standardization.scale.size()));
    }
    for (std::size_t d = 0; d < dim; ++d) {
      if (!std::isfinite(standardization.shift[d]) || !std::isfinite(standardization.scale[d]) ||
          standardization.scale[d] <= 0) {
        throw InvalidArgument("standardization: column " + std::to_string(d) +
                              " needs a finite shift and a positive finite scale");
      }
    }
  }
  standardization_ = std::move(standardization);
}

// --- Density pass ---------------------------------------------------------------------------

template <typename T>
void BasicMaf<T>::forward(const T* x, std::size_t n, T* u, double* log_det) const {
  const int dim = config_.dim;
  const int activation = static_cast<int>(config_.activation);
  const T bound = static_cast<T>(config_.max_log_scale);
  std::vector<detail::MadeBands> bands;
  for (const auto& made : made_) bands.push_back(detail::make_made_bands(made));

  const double standardization_log_det = standardization_.log_det();

  // Tiles are fixed by row index, so the split among threads never changes a result.
  const std::ptrdiff_t tiles =
      static_cast<std::ptrdiff_t>((n + kDensityTileRows - 1) / kDensityTileRows);
#pragma omp parallel if (tiles > 1)
  {
    std::vector<T> y;
    detail::MadeTile<T> tile;
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t t = 0; t < tiles; ++t) {
      const std::size_t first = static_cast<std::size_t>(t) * kDensityTileRows;
      const int rows = static_cast<int>(std::min(kDensityTileRows, n - first));
      T* z = u + first * dim;
      double* tile_log_det = log_det + first;

      // Start from the standardized data; z is updated in place, layer after layer.
      for (int r = 0; r < rows; ++r) {
        standardization_.to_flow_units(x + (first + r) * dim, dim,
                                       z + static_cast<std::size_t>(r) * dim);
        tile_log_det[r] = standardization_log_det;
      }

      for (std::size_t layer = 0; layer < made_.size(); ++layer) {
        forward_layer(layer, bands[layer], activation, bound, rows, z, tile_log_det, y, tile);
      }
    }
  }
}

template <typename T>
void BasicMaf<T>::forward_layer(std::size_t layer, const detail::MadeBands& bands, int activation,
                                T bound, int rows, T* z, double* log_det, std::vector<T>& y,
                                detail::MadeTile<T>& tile) const {
  const int dim = config_.dim;
  const MadeLayout& made = made_[layer];

  // Gather the layer's order, run the MADE, apply the affine step back in data order.
  y.resize(static_cast<std::size_t>(rows) * dim);
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < dim; ++k) y[r * dim + k] = z[r * dim + made.order[k]];
  }
  detail::made_forward(parameters_, tensors_, made, bands, activation, dim, y.data(), rows, tile);
  for (int r = 0; r < rows; ++r) {
    const T* out = tile.out.data() + static_cast<std::size_t>(r) * 2 * dim;
    double row_log_det = 0;
    for (int k = 0; k < dim; ++k) {
      const T alpha = maf_math::bounded_log_scale(out[dim + k], bound);
      z[r * dim + made.order[k]] = maf_math::affine_to_noise(y[r * dim + k], out[k], alpha);
      row_log_det -= alpha;
    }
    log_det[r] += row_log_det;
  }
  if (layer >= batch_norm_.size()) return;

  // Batch normalization in evaluation mode: a fixed affine map per column.
  const BatchNormLayout& bn = batch_norm_[layer];
  double bn_log_det = 0;
  std::vector<T> scale(dim);
  std::vector<T> shift(dim);
  for (int d = 0; d < dim; ++d) {
    const double var = buffers_[bn.running_var + d] + detail::kBatchNormEpsilon;
    const double log_gamma = parameters_[tensors_[bn.log_gamma].offset + d];
    scale[d] = static_cast<T>(std::exp(log_gamma) / std::sqrt(var));
    shift[d] = static_cast<T>(parameters_[tensors_[bn.beta].offset + d] -
                              buffers_[bn.running_mean + d] * scale[d]);
    bn_log_det += log_gamma - 0.5 * std::log(var);
  }
  for (int r = 0; r < rows; ++r) {
    for (int d = 0; d < dim; ++d) z[r * dim + d] = z[r * dim + d] * scale[d] + shift[d];
    log_det[r] += bn_log_det;
  }
}

template <typename T>
void BasicMaf<T>::log_prob(const T* x, std::size_t n, T* out, T* u_out) const {
  const int dim = config_.dim;
  std::vector<T> scratch(u_out == nullptr ? n * dim : 0);
  T* u = u_out != nullptr ? u_out : scratch.data();
  std::vector<double> log_det(n);
  forward(x, n, u, log_det.data());

  // log p(x) = log N(u; 0, I) + log|det du/dx|, the squared norm summed in double.
#pragma omp parallel for schedule(static) if (n > 4096)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
    double squared_norm = 0;
    for (int d = 0; d < dim; ++d) {
      const double value = u[i * dim + d];
      squared_norm += value * value;
    }
    out[i] = static_cast<T>(maf_math::standard_normal_log_density(squared_norm, dim) + log_det[i]);
  }
}

template <typename T>
std::vector<T> BasicMaf<T>::log_prob(const Matrix<T>& x) const {
  if (x.cols() != static_cast<std::size_t>(config_.dim)) {
    throw DataError("log_prob: data has " + std::to_string(x.cols()) +
                    " columns, the flow has dimension " + std::to_string(config_.dim));
  }
  std::vector<T> out(x.rows());
  log_prob(x.data(), x.rows(), out.data());
  return out;
}

// --- Batch-norm statistics ----------------------------------------------------------------

template <typename T>
void BasicMaf<T>::update_running_statistics(const BatchStatistics& statistics, double momentum) {
  for (std::size_t b = 0; b < batch_norm_.size() && b < statistics.mean.size(); ++b) {
    for (int d = 0; d < config_.dim; ++d) {
      T& mean = buffers_[batch_norm_[b].running_mean + d];
      T& var = buffers_[batch_norm_[b].running_var + d];
      mean = static_cast<T>(momentum * mean + (1 - momentum) * statistics.mean[b][d]);
      var = static_cast<T>(momentum * var + (1 - momentum) * statistics.var[b][d]);
    }
  }
}

template <typename T>
void BasicMaf<T>::recompute_batch_norm_statistics(const T* x, std::size_t n) {
  if (batch_norm_.empty() || n == 0) return;
  const int dim = config_.dim;

  // Layer by layer: set layer b's statistics from the data as it arrives there, which
  // depends only on the layers before b (already final).
  for (std::size_t b = 0; b < batch_norm_.size(); ++b) {
    BasicMaf<T> truncated = *this;
    truncated.made_.resize(b + 1);
    truncated.batch_norm_.resize(b);
    std::vector<T> z(n * dim);
    std::vector<double> log_det(n);
    truncated.forward(x, n, z.data(), log_det.data());

    for (int d = 0; d < dim; ++d) {
      double sum = 0;
      double sum_sq = 0;
      for (std::size_t i = 0; i < n; ++i) sum += z[i * dim + d];
      const double mean = sum / static_cast<double>(n);
      for (std::size_t i = 0; i < n; ++i) {
        const double centred = z[i * dim + d] - mean;
        sum_sq += centred * centred;
      }
      buffers_[batch_norm_[b].running_mean + d] = static_cast<T>(mean);
      buffers_[batch_norm_[b].running_var + d] = static_cast<T>(sum_sq / static_cast<double>(n));
    }
  }
}

// --- Conversion -----------------------------------------------------------------------------

template <typename T>
template <typename U>
BasicMaf<U> BasicMaf<T>::cast() const {
  BasicMaf<U> other(config_);
  other.parameters_.assign(parameters_.begin(), parameters_.end());
  other.buffers_.assign(buffers_.begin(), buffers_.end());
  other.standardization_ = standardization_;
  return other;
}

template class BasicMaf<float>;
template class BasicMaf<double>;
template BasicMaf<double> BasicMaf<float>::cast<double>() const;
template BasicMaf<float> BasicMaf<double>::cast<float>() const;
template BasicMaf<float> BasicMaf<float>::cast<float>() const;
template BasicMaf<double> BasicMaf<double>::cast<double>() const;

}  // namespace nfcal
