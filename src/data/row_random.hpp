// Per-row random numbers for dataset generators: a Philox stream keyed by (seed, row), so a
// row's values never depend on how many rows are drawn or in what order.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/philox.hpp"

namespace nfcal::data {

/// Stream numbers, apart from those the flow and the sampler use.
inline constexpr std::uint32_t kDatasetStream = 0x64617461u;    // rows of a dataset
inline constexpr std::uint32_t kStructureStream = 0x73747275u;  // a mixture's parameters

/// Uniforms and normals in double precision for one row.
class RowRandom {
 public:
  RowRandom(std::uint64_t seed, std::uint64_t row, std::uint32_t stream)
      : seed_(seed), row_(row), stream_(stream) {}

  /// Uniform in (0, 1), 53 random bits from two 32-bit words, centred in its cell.
  double uniform() {
    if (next_ == 4) refill();
    const std::uint64_t high = words_.w[next_] >> 5;     // 27 bits
    const std::uint64_t low = words_.w[next_ + 1] >> 6;  // 26 bits
    next_ += 2;
    return (static_cast<double>((high << 26) | low) + 0.5) * 0x1.0p-53;
  }

  /// Standard normal by Box-Muller; the second value of each pair is kept for the next call.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log(uniform()));
    const double angle = 6.283185307179586476925 * uniform();
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  void refill() {
    words_ = rng::keyed_words(seed_, row_, block_++, stream_);
    next_ = 0;
  }

  std::uint64_t seed_;
  std::uint64_t row_;
  std::uint32_t stream_;
  std::uint32_t block_ = 0;
  rng::Words4 words_{};
  int next_ = 4;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace nfcal::data
