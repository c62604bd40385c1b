// Where the MAF kernels keep weights and row state, decided once per device and model from
// the device's shared-memory limit per block. Host code only, so the CPU tests check the
// decisions for known devices (H100/H200: 232,448 bytes; A100: 166,912 bytes).
#pragma once

#include <cstddef>

#include "common/maf_rows.hpp"

namespace nfcal::rows {

/// Rows per block of the shared-memory kernels, largest first.
constexpr int kTileCandidates[] = {128, 64, 32};

/// A kernel's memory plan.
struct KernelPlan {
  int tile = 0;                  // rows per block (threads per block); 0: does not fit
  bool weights_shared = false;   // a layer block is copied to shared memory
  bool state_shared = false;     // row state in shared memory (else a global scratch)
  std::size_t shared_bytes = 0;  // dynamic shared memory per block
};

/// Shared bytes for the largest layer block and/or `tile` rows of state.
inline std::size_t plan_shared_bytes(const PackedMaf& maf, int tile, bool weights, bool state) {
  std::size_t floats = weights ? static_cast<std::size_t>(maf.max_block_floats) : 0;
  if (state) floats += static_cast<std::size_t>(tile) * state_floats(maf);
  return floats * sizeof(float);
}

/// The fused density kernel's plan: weights and state shared at the largest tile that fits,
/// or tile 0 when not even 32 rows fit (the general path is used then).
inline KernelPlan plan_fused_density(const PackedMaf& maf, std::size_t shared_limit) {
  for (const int tile : kTileCandidates) {
    const std::size_t bytes = plan_shared_bytes(maf, tile, true, true);
    if (bytes <= shared_limit) return KernelPlan{tile, true, true, bytes};
  }
  return KernelPlan{};
}

/// The sampling kernel's plan: everything shared when it fits; else shared weights with the
/// state in a global scratch; else both global (any model runs).
inline KernelPlan plan_sampling(const PackedMaf& maf, std::size_t shared_limit) {
  const KernelPlan fused = plan_fused_density(maf, shared_limit);
  if (fused.tile > 0) return fused;
  const std::size_t weight_bytes = plan_shared_bytes(maf, 0, true, false);
  if (weight_bytes <= shared_limit) return KernelPlan{128, true, false, weight_bytes};
  return KernelPlan{128, false, false, 0};
}

}  // namespace nfcal::rows
