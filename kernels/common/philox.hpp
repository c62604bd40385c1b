// Counter-based random numbers shared by the CPU backend and the CUDA kernels.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
// generator cuRAND calls PHILOX4_32_10: a 128-bit counter and a 64-bit key give four 32-bit
// words. nfcal keys every draw by (seed, row or candidate index, block, stream), so a value never
// depends on batch size, thread count or device: both backends compute the same numbers.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.hpp"

namespace nfcal::rng {

struct Words4 {
  std::uint32_t w[4];
};

/// Independent streams drawn from one seed.
enum Stream : std::uint32_t {
  kStreamBaseNoise = 0,  // the flow's base N(0, I) noise, per row
  kStreamAccept = 1,     // the uniform of the rejection test, per candidate
  kStreamShuffle = 2,    // minibatch order and splits
  kStreamInit = 3,       // weight initialization
};

NFCAL_HD std::uint32_t mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t* hi) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  *hi = static_cast<std::uint32_t>(product >> 32);
  return static_cast<std::uint32_t>(product);
}

/// The Philox4x32 bijection with 10 rounds.
NFCAL_HD Words4 philox4x32_10(Words4 counter, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u;
  constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
  constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0 = 0;
    std::uint32_t hi1 = 0;
    const std::uint32_t lo0 = mulhilo32(kMul0, counter.w[0], &hi0);
    const std::uint32_t lo1 = mulhilo32(kMul1, counter.w[2], &hi1);
    counter = Words4{{hi1 ^ counter.w[1] ^ key0, lo1, hi0 ^ counter.w[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

/// Four random words for (seed, index, block, stream).
NFCAL_HD Words4 keyed_words(std::uint64_t seed, std::uint64_t index, std::uint32_t block,
                            std::uint32_t stream) {
  const Words4 counter{
      {static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32), block, stream}};
  return philox4x32_10(counter, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

/// A uniform float strictly inside (0, 1): the top 23 bits, centred in their cell, so the
/// values run from 2^-24 to 1 - 2^-24, all exactly representable (with 24 bits the largest
/// value, 1 - 2^-25, would round to 1).
NFCAL_HD float uniform_open01(std::uint32_t word) {
  return static_cast<float>(word >> 9) * 1.1920928955078125e-7f + 5.9604644775390625e-8f;
}

/// Box-Muller: two uniforms in (0, 1) to two independent standard normals.
NFCAL_HD void box_muller(float u1, float u2, float* z0, float* z1) {
  constexpr float kTwoPi = 6.28318530717958647692f;
  const float radius = sqrtf(-2.0f * logf(u1));
  const float angle = kTwoPi * u2;
  *z0 = radius * cosf(angle);
  *z1 = radius * sinf(angle);
}

/// Standard normals number 4 * block .. 4 * block + 3 of row `index` in `stream`.
NFCAL_HD void keyed_normals4(std::uint64_t seed, std::uint64_t index, std::uint32_t block,
                             std::uint32_t stream, float out[4]) {
  const Words4 words = keyed_words(seed, index, block, stream);
  box_muller(uniform_open01(words.w[0]), uniform_open01(words.w[1]), &out[0], &out[1]);
  box_muller(uniform_open01(words.w[2]), uniform_open01(words.w[3]), &out[2], &out[3]);
}

/// The uniform in (0, 1) of candidate `index` in `stream`.
NFCAL_HD float keyed_uniform(std::uint64_t seed, std::uint64_t index, std::uint32_t stream) {
  return uniform_open01(keyed_words(seed, index, 0, stream).w[0]);
}

}  // namespace nfcal::rng
