// The rows a calibration classifier scores, shared by the CPU backend and the CUDA sampler.
//
// With latent features the classifier sees a row x next to its base coordinates u = f(x), the
// flow's own map to N(0, I). Both describe the same point, but axis-aligned tree splits in u
// follow the curved level sets of the flow, so the trees carve the density ratio in two
// coordinate systems at once. A flow sample's u is the base noise it was drawn from, keyed by
// (seed, row), so the sampler gets it without running the flow backwards.
#pragma once

#include <cstdint>

#include "common/host_device.hpp"
#include "common/philox.hpp"

namespace nfcal::features {

/// Writes the classifier row of flow sample `row`: x (dim values), then its base noise keyed by
/// (seed, row) in the base-noise stream, exactly as BasicMaf::base_noise draws it.
NFCAL_HD void latent_sample_row(const float* x, int dim, std::uint64_t seed, std::uint64_t row,
                                float* out) {
  for (int d = 0; d < dim; ++d) out[d] = x[d];
  for (int block = 0; block * 4 < dim; ++block) {
    float noise[4];
    rng::keyed_normals4(seed, row, static_cast<std::uint32_t>(block), rng::kStreamBaseNoise, noise);
    for (int j = 0; j < 4 && block * 4 + j < dim; ++j) out[dim + block * 4 + j] = noise[j];
  }
}

}  // namespace nfcal::features
