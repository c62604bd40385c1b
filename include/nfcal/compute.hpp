// One entry point per computation, with the device as an argument: the CPU backend, or the
// CUDA backend's classes (nfcal/cuda.hpp) on the GPU a Device names. Both compute the same
// functions from the same parameters and the same keyed random numbers, so a result differs
// between devices by float rounding only.
//
//     const nfcal::Device gpu = nfcal::Device::parse("auto");  // a GPU when there is one
//     std::vector<float> lp = nfcal::log_prob(model, x, gpu);
//     nfcal::SamplerOptions options;
//     options.seed = 7;
//     options.device = gpu;
//     nfcal::Matrix<float> s = nfcal::sample_calibrated(model, 10000, options);
//
// A CUDA device in a build without the CUDA backend is an InvalidArgument that says so.
// Calibrated models run on the GPU when their classifier is an XGBoostClassifier (a user's
// callback classifier is host code, and InvalidArgument names --device cpu instead).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/device.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal {

/// Log densities of every row of x (n, D) under the flow. Throws DataError when x has not
/// flow.dim() columns.
std::vector<float> log_prob(const Maf& flow, const Matrix<float>& x, const Device& device);

/// n samples, row i drawn from base noise keyed by (seed, first_row + i).
Matrix<float> sample(const Maf& flow, std::size_t n, std::uint64_t seed, const Device& device,
                     std::uint64_t first_row = 0);

/// Log densities under the calibrated model: log P(x) + min(m(x), L) - log Z. Throws DataError
/// on a column mismatch or a NaN margin.
std::vector<float> log_prob(const CalibratedFlow& model, const Matrix<float>& x,
                            const Device& device);

}  // namespace nfcal
