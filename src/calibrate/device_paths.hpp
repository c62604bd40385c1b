// The CUDA paths behind the CPU entry points, defined in src/calibrate/compute.cpp.
#pragma once

#include <cstddef>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/rejection_sampler.hpp"

namespace nfcal::detail {

/// sample_calibrated() on the GPU options.device names (CudaCalibratedSampler): the same rows
/// as the CPU sampler for the same seed. Throws InvalidArgument without the CUDA backend or
/// for a classifier that is not XGBoost.
Matrix<float> sample_calibrated_on_device(const CalibratedFlow& model, std::size_t n,
                                          const SamplerOptions& options, SamplerReport* report);

}  // namespace nfcal::detail
