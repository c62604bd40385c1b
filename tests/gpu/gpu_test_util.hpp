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

#include "maf_test_support.hpp"

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

using testing::random_dense_flow;

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
