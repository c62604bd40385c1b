// Hidden-unit nonlinearities over whole arrays, for the CPU passes.
//
// maf_math::activate is the per-element definition shared with the CUDA kernels; applied one
// element at a time on the CPU it costs a libm call per hidden unit (tanhf, expm1f), which
// dominates small flows. These loops choose the activation once per array and let Eigen's
// vectorized tanh and expm1 do the work; they agree with maf_math::activate to a few units in
// the last place (tests/test_maf_math.cpp checks it).
#pragma once

#include <algorithm>
#include <cstddef>

#include <Eigen/Core>

#include "common/maf_math.hpp"

namespace nfcal::detail {

/// out[i] = activate(in[i]) for i < count; in and out may be the same array.
template <typename T>
void activate_array(const T* in, std::size_t count, int activation, T* out) {
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  const auto n = static_cast<Eigen::Index>(count);
  const Eigen::Map<const Array> z(in, n);
  Eigen::Map<Array> a(out, n);

  switch (activation) {
    case maf_math::kRelu:
      a = z.max(T(0));
      break;
    case maf_math::kTanh:
      a = z.tanh();
      break;
    default:  // ELU with alpha 1
      a = (z > T(0)).select(z, z.expm1());
      break;
  }
}

}  // namespace nfcal::detail
