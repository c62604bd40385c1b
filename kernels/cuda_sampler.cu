// nfcal::CudaCalibratedSampler: the calibrated sampling loop on the device.
//
// Each round draws `round` candidates with indices next..next+round-1 (flow noise keyed by
// (seed, index)), asks the classifier for their margins into device memory, runs the fused
// accept kernel and CUB compaction, and appends the accepted rows to the output. Only the
// round's accepted count crosses to the host. The next round's size comes from the
// acceptance measured so far, capped by max_round and by free device memory; because both
// noise and uniforms are keyed by candidate index and compaction keeps index order, the output
// is the first n accepted candidates whatever the round sizes.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/features.hpp"
#include "cuda_accept.cuh"
#include "cuda_maf_impl.cuh"

namespace nfcal {

namespace {

constexpr std::size_t kMinRound = 4096;
constexpr double kFirstGuessRate = 0.5;  // acceptance assumed before any is measured
constexpr double kRoundMargin = 1.1;     // draw 10% more than the expected need

/// Milliseconds between two recorded events.
double seconds_between(cudaEvent_t begin, cudaEvent_t end) {
  float ms = 0;
  NFCAL_CUDA_CHECK(cudaEventElapsedTime(&ms, begin, end));
  return ms * 1e-3;
}

// Classifier rows of latent input: each candidate next to the base noise it was drawn from.
__global__ void latent_features_kernel(const float* candidates, std::size_t n, int dim,
                                       std::uint64_t seed, std::uint64_t first, float* out) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const auto width = static_cast<std::size_t>(dim);
  features::latent_sample_row(candidates + i * width, dim, seed, first + i, out + 2 * i * width);
}

// The rows the classifier scores for candidates keyed (seed, first..first+n-1): the
// candidates themselves, or the latent rows written into `features`.
const float* classifier_rows(const float* candidates, std::size_t n, int dim, std::uint64_t seed,
                             std::uint64_t first, bool latent,
                             cuda_detail::DeviceBuffer<float>& features, cudaStream_t stream) {
  if (!latent) return candidates;
  features.resize(2 * n * static_cast<std::size_t>(dim), "classifier rows");
  if (n == 0) return features.data();  // a launch of no blocks is an error
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  latent_features_kernel<<<blocks, kThreads, 0, stream>>>(candidates, n, dim, seed, first,
                                                          features.data());
  NFCAL_CUDA_CHECK(cudaGetLastError());
  return features.data();
}

}  // namespace

struct CudaCalibratedSampler::Buffers {
  cuda_detail::DeviceBuffer<float> candidates;  // (round, D)
  cuda_detail::DeviceBuffer<float> features;    // (round, 2 D) for latent input
  cuda_detail::DeviceBuffer<float> margins;     // (round)
  AcceptWorkspace accept;
  cuda_detail::Event marks[4]{
      cuda_detail::Event(cudaEventDefault), cuda_detail::Event(cudaEventDefault),
      cuda_detail::Event(cudaEventDefault), cuda_detail::Event(cudaEventDefault)};
};

CudaCalibratedSampler::CudaCalibratedSampler(const CudaMaf& flow,
                                             const DeviceClassifier& classifier,
                                             CudaSamplerConfig config)
    : flow_(flow), classifier_(classifier), config_(config) {
  const int columns = config.latent_features ? 2 * flow.dim() : flow.dim();
  if (classifier.num_features() != columns) {
    throw InvalidArgument("CudaCalibratedSampler: the classifier scores " +
                          std::to_string(classifier.num_features()) + " columns, the flow has " +
                          std::to_string(flow.dim()) +
                          (config.latent_features ? " (with latent input, twice that)" : ""));
  }
  if (!std::isfinite(config.ceiling)) {
    throw InvalidArgument(
        "CudaCalibratedSampler: the ceiling must be finite for exact "
        "rejection sampling");
  }
  if (config.max_round < 1) throw InvalidArgument("CudaCalibratedSampler: max_round < 1");
  cuda_detail::DeviceGuard guard(flow.device());
  buffers_ = std::make_unique<Buffers>();
}

CudaCalibratedSampler::~CudaCalibratedSampler() = default;

void CudaCalibratedSampler::sample(std::size_t n, float* d_out, CudaStream stream) {
  cuda_detail::DeviceGuard guard(flow_.device());
  stats_ = CudaSamplingStats{};
  Buffers& b = *buffers_;
  const int dim = flow_.dim();

  // The largest round that fits: candidates, latent rows, margins, flags and indices per row.
  const std::size_t row_floats = config_.latent_features ? 3 * dim : dim;
  const std::size_t bytes_per_candidate =
      (row_floats + 2) * sizeof(float) + 1 + sizeof(std::uint32_t);
  const std::size_t round_cap =
      cuda_detail::rows_that_fit(bytes_per_candidate, 0.25, config_.max_round);
  std::size_t accepted = 0;
  while (accepted < n) {
    // Round size from the acceptance measured so far.
    if (stats_.candidates >= config_.max_candidates) {
      throw SamplingError("GPU calibrated sampling: " + std::to_string(stats_.candidates) +
                          " candidates gave " + std::to_string(accepted) + " of " +
                          std::to_string(n) +
                          " rows; raise the ceiling's acceptance or "
                          "max_candidates");
    }
    const double rate = stats_.candidates > 0
                            ? std::max(static_cast<double>(stats_.accepted), 1.0) /
                                  static_cast<double>(stats_.candidates)
                            : kFirstGuessRate;
    const double want = static_cast<double>(n - accepted) / rate * kRoundMargin;
    std::size_t round = static_cast<std::size_t>(std::min(want, static_cast<double>(round_cap)));
    round = std::max(round, std::min(kMinRound, round_cap));
    round = std::min(round, config_.max_candidates - stats_.candidates);
    b.candidates.resize(round * dim, "sampler candidates");
    b.margins.resize(round, "sampler margins");

    // Generate, score, accept and compact, timing each stage with events.
    const std::uint64_t first = stats_.candidates;
    NFCAL_CUDA_CHECK(cudaEventRecord(b.marks[0].get(), stream));
    flow_.sample(round, config_.seed, first, b.candidates.data(), stream);
    NFCAL_CUDA_CHECK(cudaEventRecord(b.marks[1].get(), stream));
    const float* rows = classifier_rows(b.candidates.data(), round, dim, config_.seed, first,
                                        config_.latent_features, b.features, stream);
    classifier_.margins(rows, round, b.margins.data(), stream);
    NFCAL_CUDA_CHECK(cudaEventRecord(b.marks[2].get(), stream));
    launch_accept(b.margins.data(), round, first, AcceptParams{config_.seed, 0.0f, config_.ceiling},
                  b.accept, stream);
    launch_gather(b.candidates.data(), round, dim, b.accept, accepted, n, d_out, stream);
    NFCAL_CUDA_CHECK(cudaEventRecord(b.marks[3].get(), stream));
    const std::size_t count = read_count(b.accept, stream);

    // Book-keeping for the next round and the report.
    stats_.flow_seconds += seconds_between(b.marks[0].get(), b.marks[1].get());
    stats_.margin_seconds += seconds_between(b.marks[1].get(), b.marks[2].get());
    stats_.accept_seconds += seconds_between(b.marks[2].get(), b.marks[3].get());
    stats_.candidates += round;
    stats_.accepted += count;
    stats_.rounds += 1;
    accepted = std::min(n, accepted + count);
  }
}

Matrix<float> CudaCalibratedSampler::sample(std::size_t n) {
  cuda_detail::DeviceGuard guard(flow_.device());
  cuda_detail::Stream stream;
  Matrix<float> out(n, flow_.dim());
  if (n == 0) return out;
  cuda_detail::DeviceBuffer<float> d_out(out.size(), "calibrated samples");
  sample(n, d_out.data(), stream.get());
  NFCAL_CUDA_CHECK(cudaMemcpyAsync(out.data(), d_out.data(), out.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream.get()));
  stream.synchronize();
  return out;
}

LogZEstimate CudaCalibratedSampler::log_z(std::size_t samples, std::uint64_t seed) {
  if (samples == 0) throw InvalidArgument("CudaCalibratedSampler::log_z: needs at least 1 sample");
  cuda_detail::DeviceGuard guard(flow_.device());
  cuda_detail::Stream stream;
  Buffers& b = *buffers_;
  const int dim = flow_.dim();
  const std::size_t chunk = std::min<std::size_t>(
      std::max<std::size_t>(samples, 1),
      cuda_detail::rows_that_fit(((config_.latent_features ? 3 * dim : dim) + 1) * sizeof(float),
                                 0.25, config_.max_round));
  b.candidates.resize(chunk * dim, "log Z samples");
  b.margins.resize(chunk, "log Z margins");

  // Fresh flow rows keyed by (seed, i), their margins, and a running log-sum-exp.
  LogZPartial total;
  for (std::size_t first = 0; first < samples; first += chunk) {
    const std::size_t rows = std::min(chunk, samples - first);
    flow_.sample(rows, seed, first, b.candidates.data(), stream.get());
    const float* scored = classifier_rows(b.candidates.data(), rows, dim, seed, first,
                                          config_.latent_features, b.features, stream.get());
    classifier_.margins(scored, rows, b.margins.data(), stream.get());
    const LogZPartial part =
        log_sum_exp_device(b.margins.data(), rows, config_.ceiling, stream.get());
    total.clipped.merge(part.clipped);
    total.max_raw = std::max(total.max_raw, part.max_raw);
  }
  if (total.clipped.count < samples) {
    throw DataError("GPU log Z: the classifier returned NaN for " +
                    std::to_string(samples - total.clipped.count) + " of " +
                    std::to_string(samples) + " flow samples");
  }
  return to_estimate(total);
}

}  // namespace nfcal
