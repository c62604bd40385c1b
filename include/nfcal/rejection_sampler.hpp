// Exact sampling from a calibrated flow by rejection.
//
// Candidate i is x_i ~ P, drawn from the flow with base noise keyed by (seed, i); its uniform
// u_i is keyed by (seed, i) in the accept stream. It is accepted when
//     log u_i < min(m(x_i), L) - L,
// so accepted candidates are exact draws from Q_L(x) = P(x) exp(min(m(x), L)) / Z_L and the
// acceptance rate is Z_L / exp(L). The sampler returns the first n accepted candidates in
// candidate order, so the result depends on the seed only: not on batch size, thread count or
// how the work is split. With an infinite ceiling the model's estimated bound takes L's place
// and the draws are only approximately from the unclipped model (the report says so).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "nfcal/device.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal {

class CalibratedFlow;

struct SamplerOptions {
  std::uint64_t seed = 0;
  std::size_t batch_size = 0;      // candidates per round; 0: sized from measured acceptance
  std::size_t max_batch = 65536;   // upper bound on an automatically sized round
  std::size_t max_candidates = 0;  // cap on candidates; 0: max(1e6, 1000 n)
  Device device = Device::cpu();   // cuda: the whole loop on that GPU (CudaCalibratedSampler)
  // Called after each round with the samples accepted so far (at most n) and n, for progress
  // displays. On a GPU the loop runs on the device and calls it once, at the end.
  std::function<void(std::size_t accepted, std::size_t requested)> on_round = nullptr;

  /// Throws InvalidArgument naming the first field out of range.
  void validate() const;
};

/// What a sampling run did and where its time went.
struct SamplerReport {
  std::size_t requested = 0;
  std::size_t candidates = 0;  // candidates drawn (and tested) in all rounds
  std::size_t accepted = 0;    // accepted among them (at least requested on success)
  std::size_t rounds = 0;
  double acceptance_measured = 0;   // accepted / candidates
  double acceptance_predicted = 0;  // Z_L / exp(L) from the model's log Z
  double bound = 0;                 // the L of the accept test
  bool exact = true;                // false when the model has no finite ceiling
  double seconds_flow = 0, seconds_classifier = 0, seconds_accept = 0, seconds_total = 0;

  /// Human-readable lines for logs and the command line.
  std::string summary() const;
};

/// n exact draws (n, D) from the calibrated model. Throws SamplingError, with the measured
/// acceptance rate and a suggestion to lower the ceiling, when the candidate cap is reached
/// first (report, when given, is filled in either case); InvalidArgument on bad options;
/// DataError when the classifier returns NaN margins. With options.device a CUDA device the
/// loop runs there and returns the same rows (see nfcal/compute.hpp for its requirements);
/// batch_size and max_batch then do not apply.
///
///     nfcal::SamplerReport report;
///     nfcal::Matrix<float> x = nfcal::sample_calibrated(model, 10000, {/*seed=*/7}, &report);
Matrix<float> sample_calibrated(const CalibratedFlow& model, std::size_t n,
                                const SamplerOptions& options = {},
                                SamplerReport* report = nullptr);

}  // namespace nfcal
