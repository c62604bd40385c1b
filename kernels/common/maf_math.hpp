// Per-element MAF arithmetic shared by the CPU backend (src/maf/) and the CUDA kernels.
//
// Everything a row of data meets inside a MADE layer, other than the masked matrix products:
// activations and their derivatives, the bounded log-scale alpha = B * tanh(raw / B), the
// affine autoregressive step in both directions, the standard normal log density, and the
// degree of each hidden unit. CPU tests (tests/test_maf_math.cpp) cover each function.
#pragma once

#include <cmath>

#include "common/host_device.hpp"

namespace nfcal::maf_math {

// Overloads that keep float arithmetic in float on both sides (plain ::exp would promote).
NFCAL_HD float exp_of(float x) { return expf(x); }
NFCAL_HD double exp_of(double x) { return exp(x); }
NFCAL_HD float tanh_of(float x) { return tanhf(x); }
NFCAL_HD double tanh_of(double x) { return tanh(x); }
NFCAL_HD float expm1_of(float x) { return expm1f(x); }
NFCAL_HD double expm1_of(double x) { return expm1(x); }

/// Activation codes, in the order of nfcal::Activation.
enum ActivationCode : int { kRelu = 0, kTanh = 1, kElu = 2 };

/// The hidden-unit nonlinearity.
template <typename T>
NFCAL_HD T activate(T z, int activation) {
  if (activation == kRelu) return z > T(0) ? z : T(0);
  if (activation == kTanh) return tanh_of(z);
  return z > T(0) ? z : expm1_of(z);  // ELU with alpha 1
}

/// d activate / dz, from the pre-activation z and the activation a = activate(z).
template <typename T>
NFCAL_HD T activation_derivative(T z, T a, int activation) {
  if (activation == kRelu) return z > T(0) ? T(1) : T(0);
  if (activation == kTanh) return T(1) - a * a;
  return z > T(0) ? T(1) : a + T(1);
}

/// alpha = B * tanh(raw / B): close to raw near zero, never beyond +-B.
template <typename T>
NFCAL_HD T bounded_log_scale(T raw, T bound) {
  return bound * tanh_of(raw / bound);
}

/// d alpha / d raw.
template <typename T>
NFCAL_HD T bounded_log_scale_derivative(T raw, T bound) {
  const T t = tanh_of(raw / bound);
  return T(1) - t * t;
}

/// Density direction: u = (y - mu) * exp(-alpha).
template <typename T>
NFCAL_HD T affine_to_noise(T y, T mu, T alpha) {
  return (y - mu) * exp_of(-alpha);
}

/// Sampling direction: y = u * exp(alpha) + mu.
template <typename T>
NFCAL_HD T affine_from_noise(T u, T mu, T alpha) {
  return u * exp_of(alpha) + mu;
}

/// log N(u; 0, I) from the squared norm of u (accumulated in double by the caller).
NFCAL_HD double standard_normal_log_density(double squared_norm, int dim) {
  constexpr double kLogTwoPi = 1.8378770664093454836;
  return -0.5 * (squared_norm + dim * kLogTwoPi);
}

/// Degree of hidden unit `unit` of `hidden`, spread evenly over 1..max(D-1, 1) and
/// non-decreasing in `unit`. With fewer units than degrees, the units skip degrees evenly
/// rather than crowding into 1..hidden, so every later input stays reachable.
NFCAL_HD int hidden_degree(int unit, int hidden, int dim) {
  const int max_degree = dim > 1 ? dim - 1 : 1;
  return 1 + static_cast<int>((static_cast<long long>(unit) * max_degree) / hidden);
}

}  // namespace nfcal::maf_math
