// Helpers for MAF tests: flows with random (non-identity) weights that respect the masks,
// and small reference datasets with known densities.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal::testing {

/// Fills every unmasked weight, bias and batch-norm value of flow with seeded random values
/// of moderate size, so each layer is far from the identity yet numerically tame.
template <typename T>
void randomize(BasicMaf<T>& flow, std::uint64_t seed, double output_scale = 0.4) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<T>& p = flow.parameters();
  const auto& tensors = flow.tensors();
  for (const MadeLayout& made : flow.made_layers()) {
    for (std::size_t l = 0; l < made.weights.size(); ++l) {
      const TensorSpec& w = tensors[made.weights[l]];
      for (int r = 0; r < w.rows; ++r) {
        const double bound = 1.5 / std::sqrt(std::max(1, made.prefix[l][r]));
        for (int c = 0; c < made.prefix[l][r]; ++c) {
          p[w.offset + static_cast<std::size_t>(r) * w.cols + c] =
              static_cast<T>(bound * uniform(engine));
        }
      }
      const TensorSpec& b = tensors[made.biases[l]];
      for (int r = 0; r < b.rows; ++r) p[b.offset + r] = static_cast<T>(0.3 * uniform(engine));
    }
    const TensorSpec& w = tensors[made.out_weight];
    const int dim = flow.dim();
    for (int r = 0; r < w.rows; ++r) {
      const int prefix = made.out_prefix[r % dim];
      const double bound = output_scale / std::sqrt(std::max(1, prefix));
      for (int c = 0; c < prefix; ++c) {
        p[w.offset + static_cast<std::size_t>(r) * w.cols + c] =
            static_cast<T>(bound * uniform(engine));
      }
    }
    const TensorSpec& b = tensors[made.out_bias];
    for (int r = 0; r < b.rows; ++r) p[b.offset + r] = static_cast<T>(0.3 * uniform(engine));
  }
  for (const BatchNormLayout& bn : flow.batch_norm_layers()) {
    for (int d = 0; d < flow.dim(); ++d) {
      p[tensors[bn.log_gamma].offset + d] = static_cast<T>(0.2 * uniform(engine));
      p[tensors[bn.beta].offset + d] = static_cast<T>(0.2 * uniform(engine));
      flow.buffers()[bn.running_mean + d] = static_cast<T>(0.3 * uniform(engine));
      flow.buffers()[bn.running_var + d] = static_cast<T>(1.0 + 0.5 * uniform(engine));
    }
  }
}

/// One flag per parameter: true where the autoregressive masks let the weight be non-zero.
template <typename T>
std::vector<bool> unmasked_parameters(const BasicMaf<T>& flow) {
  std::vector<bool> live(flow.num_parameters(), true);
  const auto& tensors = flow.tensors();
  auto mask_rows = [&](const TensorSpec& w, auto prefix_of_row) {
    for (int r = 0; r < w.rows; ++r) {
      for (int c = prefix_of_row(r); c < w.cols; ++c) {
        live[w.offset + static_cast<std::size_t>(r) * w.cols + c] = false;
      }
    }
  };
  for (const MadeLayout& made : flow.made_layers()) {
    for (std::size_t l = 0; l < made.weights.size(); ++l) {
      mask_rows(tensors[made.weights[l]], [&](int r) { return made.prefix[l][r]; });
    }
    mask_rows(tensors[made.out_weight], [&](int r) { return made.out_prefix[r % flow.dim()]; });
  }
  return live;
}

/// Zeroes every weight the masks hide: the CPU density pass reads whole bands and relies on
/// stored zeros there, as training keeps them.
template <typename T>
void zero_masked_weights(BasicMaf<T>& flow) {
  const std::vector<bool> live = unmasked_parameters(flow);
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (!live[i]) flow.parameters()[i] = T(0);
  }
}

/// A flow whose every unmasked parameter is drawn from N(0, 0.2^2) (a fresh flow is the
/// identity), with random batch-norm statistics and standardization, so each packed part of
/// the row engine and the GPU kernels takes part in a parity test.
inline Maf random_dense_flow(int dim, int hidden, int hidden_layers, bool batch_norm,
                             std::uint64_t seed, int layers = 3,
                             Activation activation = Activation::kRelu) {
  MafConfig config;
  config.dim = dim;
  config.layers = layers;
  config.hidden = hidden;
  config.hidden_layers = hidden_layers;
  config.activation = activation;
  config.batch_norm = batch_norm;
  config.seed = seed;
  Maf flow(config);
  std::mt19937 gen(static_cast<unsigned>(seed) + 5);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  for (float& p : flow.parameters()) p = normal(gen);
  zero_masked_weights(flow);
  std::uniform_real_distribution<float> positive(0.5f, 2.0f);
  for (const BatchNormLayout& bn : flow.batch_norm_layers()) {
    for (int c = 0; c < dim; ++c) {
      flow.buffers()[bn.running_mean + c] = normal(gen);
      flow.buffers()[bn.running_var + c] = positive(gen);
    }
  }
  Standardization st;
  for (int c = 0; c < dim; ++c) {
    st.shift.push_back(normal(gen));
    st.scale.push_back(positive(gen));
  }
  flow.set_standardization(st);
  return flow;
}

/// Rows of a standard normal, seeded.
template <typename T>
Matrix<T> normal_rows(std::size_t n, int dim, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal;
  Matrix<T> x(n, static_cast<std::size_t>(dim));
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(normal(engine));
  return x;
}

/// A correlated Gaussian x = A z + m with a lower-triangular A: samples and exact log density.
struct CorrelatedGaussian {
  int dim;
  std::vector<double> mean;
  std::vector<double> factor;  // (dim, dim) lower triangular, positive diagonal

  explicit CorrelatedGaussian(int d, std::uint64_t seed) : dim(d), mean(d), factor(d * d, 0.0) {
    std::mt19937_64 engine(seed);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (int i = 0; i < d; ++i) {
      mean[i] = 2.0 * uniform(engine);
      for (int j = 0; j < i; ++j) factor[i * d + j] = 0.8 * uniform(engine);
      factor[i * d + i] = 0.5 + 0.5 * (uniform(engine) + 1.0);
    }
  }

  template <typename T>
  Matrix<T> sample(std::size_t n, std::uint64_t seed) const {
    const Matrix<double> z = normal_rows<double>(n, dim, seed);
    Matrix<T> x(n, static_cast<std::size_t>(dim));
    for (std::size_t r = 0; r < n; ++r) {
      for (int i = 0; i < dim; ++i) {
        double value = mean[i];
        for (int j = 0; j <= i; ++j) value += factor[i * dim + j] * z(r, j);
        x(r, i) = static_cast<T>(value);
      }
    }
    return x;
  }

  /// log N(x; mean, A A^T) by forward substitution.
  double log_prob(const double* x) const {
    std::vector<double> z(dim);
    double log_det = 0;
    double squared = 0;
    for (int i = 0; i < dim; ++i) {
      double value = x[i] - mean[i];
      for (int j = 0; j < i; ++j) value -= factor[i * dim + j] * z[j];
      z[i] = value / factor[i * dim + i];
      log_det += std::log(factor[i * dim + i]);
      squared += z[i] * z[i];
    }
    return -0.5 * squared - 0.5 * dim * std::log(2 * M_PI) - log_det;
  }
};

/// Two interleaving half circles with Gaussian noise, seeded.
template <typename T>
Matrix<T> two_moons(std::size_t n, double noise, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<double> angle(0.0, M_PI);
  std::normal_distribution<double> jitter(0.0, noise);
  Matrix<T> x(n, 2);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = angle(engine);
    const bool upper = i % 2 == 0;
    x(i, 0) = static_cast<T>((upper ? std::cos(t) : 1.0 - std::cos(t)) + jitter(engine));
    x(i, 1) = static_cast<T>((upper ? std::sin(t) : 0.5 - std::sin(t)) + jitter(engine));
  }
  return x;
}

}  // namespace nfcal::testing
