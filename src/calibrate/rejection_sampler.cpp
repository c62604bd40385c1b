// The CPU rejection sampler: rounds of keyed candidates from the flow, their margins, the keyed
// accept test, and the first n accepted rows in candidate order.
#include "nfcal/rejection_sampler.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/error.hpp"

#include "calibrate/device_paths.hpp"
#include "common/accept.hpp"

namespace nfcal {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Candidates for the next round: enough to finish at the given rate with 10% to spare,
// within [1024, max_batch] and never past the cap.
std::size_t round_size(std::size_t missing, double rate, const SamplerOptions& options,
                       std::size_t left) {
  std::size_t size = options.batch_size;
  if (size == 0) {
    const double wanted = 1.1 * static_cast<double>(missing) / std::max(rate, 1e-9) + 16.0;
    const double capped = std::min(wanted, static_cast<double>(options.max_batch));
    size = std::max<std::size_t>(1024, static_cast<std::size_t>(capped));
  }
  return std::min(size, left);
}

}  // namespace

void SamplerOptions::validate() const {
  if (max_batch < 1) throw InvalidArgument("sampler option max_batch must be >= 1");
}

std::string SamplerReport::summary() const {
  char text[512];
  std::snprintf(text, sizeof(text),
                "rejection sampling: %zu accepted of %zu candidates in %zu rounds\n"
                "  acceptance measured %.4f, predicted %.4f (bound L = %.4g)%s\n"
                "  time %.3f s: flow %.3f s, classifier %.3f s, accept %.3f s\n",
                accepted, candidates, rounds, acceptance_measured, acceptance_predicted, bound,
                exact ? "" : "\n  approximate: the model has no ceiling, L is an estimated bound",
                seconds_total, seconds_flow, seconds_classifier, seconds_accept);
  return text;
}

Matrix<float> sample_calibrated(const CalibratedFlow& model, std::size_t n,
                                const SamplerOptions& options, SamplerReport* report) {
  const auto start = Clock::now();
  options.validate();
  if (options.device.is_cuda())
    return detail::sample_calibrated_on_device(model, n, options, report);
  const int dim = model.dim();
  const float bound = static_cast<float>(model.sampling_bound());
  const std::size_t cap = options.max_candidates > 0 ? options.max_candidates
                                                     : std::max<std::size_t>(1000000, 1000 * n);

  SamplerReport local;
  SamplerReport& r = report != nullptr ? *report : local;
  r = SamplerReport{};
  r.requested = n;
  r.acceptance_predicted = model.acceptance_predicted();
  r.bound = bound;
  r.exact = model.exact_sampling();

  Matrix<float> out(n, dim);
  std::size_t filled = 0;
  std::vector<float> margins;
  std::vector<unsigned char> keep;
  while (filled < n) {
    // Stop with an explanation, not a hang, once the cap is spent.
    if (r.candidates >= cap) {
      r.seconds_total = seconds_since(start);
      char text[400];
      std::snprintf(text, sizeof(text),
                    "rejection sampling stopped at its cap of %zu candidates with %zu of %zu "
                    "samples: measured acceptance %.3g (predicted %.3g). Lower the ceiling "
                    "(now %.4g) or raise the candidate cap",
                    cap, filled, n, r.acceptance_measured, r.acceptance_predicted, bound);
      throw SamplingError(text);
    }

    // The round's candidates, keyed by their global index.
    const double rate =
        r.candidates > 0 && r.accepted > 0 ? r.acceptance_measured : r.acceptance_predicted;
    const std::size_t batch = round_size(n - filled, rate, options, cap - r.candidates);
    const std::size_t first = r.candidates;
    auto t = Clock::now();
    const Matrix<float> u = Maf::base_noise(batch, dim, options.seed, first);
    Matrix<float> x(batch, static_cast<std::size_t>(dim));
    model.flow().inverse(u.data(), batch, x.data());
    r.seconds_flow += seconds_since(t);

    t = Clock::now();
    margins.resize(batch);
    model.margins(x.data(), batch, margins.data(), u.data());
    r.seconds_classifier += seconds_since(t);

    // The keyed test for every candidate, then the accepted ones in order.
    t = Clock::now();
    const float ceiling = static_cast<float>(model.ceiling());
    keep.assign(batch, 0);
#pragma omp parallel for schedule(static) if (batch > 8192)
    for (std::size_t i = 0; i < batch; ++i) {
      const float clipped = calib::clipped_margin(margins[i], 0.0f, std::min(ceiling, bound));
      keep[i] = calib::accept_candidate(options.seed, first + i, clipped, bound) ? 1 : 0;
    }
    for (std::size_t i = 0; i < batch; ++i) {
      if (keep[i] == 0) continue;
      ++r.accepted;
      if (filled < n) std::copy(x.row(i), x.row(i) + dim, out.row(filled++));
    }
    r.seconds_accept += seconds_since(t);

    r.candidates += batch;
    ++r.rounds;
    r.acceptance_measured = static_cast<double>(r.accepted) / static_cast<double>(r.candidates);
    if (options.on_round) options.on_round(filled, n);
  }
  r.seconds_total = seconds_since(start);
  return out;
}

}  // namespace nfcal
