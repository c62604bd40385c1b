// Shared helpers of the GPU tests: the skip on machines without a CUDA device, the random
// flows and rows the parity tests compare on, and the tolerance they use.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

#include "nfcal/device.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"

// Skips the calling test, with the reason, when no CUDA device is usable.
#define NFCAL_SKIP_WITHOUT_GPU()                                             \
  do {                                                                       \
    if (::nfcal::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace nfcal::gpu_test {

/// float32 parity: GPU and CPU may differ by rounding order and transcendental ulps.
inline double tolerance(double reference, double relative = 2e-4) {
  return relative * (1.0 + std::fabs(reference));
}

/// Zeroes every weight the masks hide: the CPU density pass reads whole bands and relies on
/// stored zeros there, as training keeps them.
inline void zero_masked_weights(Maf& flow) {
  for (const MadeLayout& made : flow.made_layers()) {
    auto zero = [&](int tensor, const std::vector<int>& prefix) {
      const TensorSpec& t = flow.tensors()[tensor];
      for (int r = 0; r < t.rows; ++r) {
        for (int c = prefix[r % prefix.size()]; c < t.cols; ++c) {
          flow.parameters()[t.offset + static_cast<std::size_t>(r) * t.cols + c] = 0.0f;
        }
      }
    };
    for (std::size_t l = 0; l < made.weights.size(); ++l) zero(made.weights[l], made.prefix[l]);
    zero(made.out_weight, made.out_prefix);
  }
}

/// A flow whose every parameter is random (a fresh flow is the identity), with random
/// batch-norm statistics and standardization, so each packed part takes part in the test.
inline Maf random_flow(int dim, int hidden, int hidden_layers, bool batch_norm, std::uint64_t seed,
                       int layers = 3, Activation activation = Activation::kRelu) {
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

/// Largest |a - b| / (1 + |b|) over two equally long arrays.
template <typename A, typename B>
double max_relative_error(const A& a, const B& b, std::size_t n) {
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i])) / (1.0 + std::fabs(double(b[i])));
    if (!(e <= worst)) worst = e;  // NaN counts as the worst
  }
  return worst;
}

/// One parseable line per parity check, collected by scripts/gpu_check.sh.
inline void report_parity(const char* what, double error) {
  std::printf("[parity] %s %.3e\n", what, error);
}

inline Matrix<float> random_rows(std::size_t n, int dim, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix<float> x(n, dim);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = normal(gen);
  return x;
}

}  // namespace nfcal::gpu_test
