// Device dispatch of the public entry points (nfcal/compute.hpp, SamplerOptions::device): the
// CPU backend, or CudaMaf, CudaBooster and CudaCalibratedSampler on the GPU a Device names.

#include "nfcal/compute.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "nfcal/error.hpp"
#include "nfcal/rejection_sampler.hpp"
#include "nfcal/xgboost_classifier.hpp"

#include "calibrate/device_paths.hpp"

#if defined(NFCAL_WITH_CUDA)
#include "nfcal/cuda.hpp"
#endif

namespace nfcal {

namespace {

void check_columns(const Matrix<float>& x, int dim, const char* what) {
  if (x.cols() != static_cast<std::size_t>(dim)) {
    throw DataError(std::string(what) + ": rows have " + std::to_string(x.cols()) +
                    " columns, the model has dimension " + std::to_string(dim));
  }
}

#if defined(NFCAL_WITH_CUDA)
// The model's booster on the GPU; only XGBoost classifiers have a device implementation.
CudaBooster device_booster(const CalibratedFlow& model, int device) {
  const auto* booster = dynamic_cast<const XGBoostClassifier*>(&model.classifier());
  if (booster == nullptr) {
    throw InvalidArgument("the calibrated model's classifier (" + model.classifier().name() +
                          ") runs on the CPU only; use --device cpu");
  }
  const std::string bytes = booster->to_bytes("ubj");
  return CudaBooster(std::vector<char>(bytes.begin(), bytes.end()), booster->num_features(),
                     booster->balance(), device);
}
#else
[[noreturn]] void no_cuda_backend() {
  throw InvalidArgument(
      "this build of nfcal has no CUDA backend (configure with nvcc present, NFCAL_CUDA=ON); "
      "use --device cpu");
}
#endif

}  // namespace

std::vector<float> log_prob(const Maf& flow, const Matrix<float>& x, const Device& device) {
  check_columns(x, flow.dim(), "flow");
  if (!device.is_cuda()) return flow.log_prob(x);
#if defined(NFCAL_WITH_CUDA)
  return CudaMaf(flow, device.index).log_prob(x);
#else
  no_cuda_backend();
#endif
}

Matrix<float> sample(const Maf& flow, std::size_t n, std::uint64_t seed, const Device& device,
                     std::uint64_t first_row) {
  if (!device.is_cuda()) return flow.sample(n, seed, first_row);
#if defined(NFCAL_WITH_CUDA)
  return CudaMaf(flow, device.index).sample(n, seed, first_row);
#else
  no_cuda_backend();
#endif
}

std::vector<float> log_prob(const CalibratedFlow& model, const Matrix<float>& x,
                            const Device& device) {
  check_columns(x, model.dim(), "calibrated model");
  if (!device.is_cuda()) return model.log_prob(x);
#if defined(NFCAL_WITH_CUDA)
  // The booster's margins and the flow's density on the GPU, the correction in double here.
  // Latent input takes its base coordinates from the CPU flow: the device density pass
  // reduces them to a log density and keeps none.
  const CudaBooster booster = device_booster(model, device.index);
  const std::vector<float> margins =
      model.classifier_input() == ClassifierInput::kData
          ? booster.margins(x)
          : booster.margins(model.classifier_rows(x.data(), x.rows()));
  std::vector<float> out = CudaMaf(model.flow(), device.index).log_prob(x);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (std::isnan(margins[i])) {
      throw DataError("calibrated model: the classifier's margin of row " + std::to_string(i) +
                      " is NaN");
    }
    const double clipped = std::min(static_cast<double>(margins[i]), model.ceiling());
    out[i] = static_cast<float>(static_cast<double>(out[i]) + clipped - model.log_z());
  }
  return out;
#else
  no_cuda_backend();
#endif
}

namespace detail {

Matrix<float> sample_calibrated_on_device(const CalibratedFlow& model, std::size_t n,
                                          const SamplerOptions& options, SamplerReport* report) {
#if defined(NFCAL_WITH_CUDA)
  const auto start = std::chrono::steady_clock::now();
  const int device = options.device.index;
  const CudaBooster booster = device_booster(model, device);
  const CudaMaf flow(model.flow(), device);

  // The accept test of the CPU sampler: min(m, L) - L with L the model's sampling bound
  // (the ceiling when it is finite), candidates and uniforms keyed by (seed, index).
  CudaSamplerConfig config;
  config.ceiling = static_cast<float>(model.sampling_bound());
  config.seed = options.seed;
  config.latent_features = model.classifier_input() == ClassifierInput::kDataAndLatent;
  config.max_candidates = options.max_candidates > 0 ? options.max_candidates
                                                     : std::max<std::size_t>(1000000, 1000 * n);
  CudaCalibratedSampler sampler(flow, booster, config);

  SamplerReport local;
  SamplerReport& r = report != nullptr ? *report : local;
  r = SamplerReport{};
  r.requested = n;
  r.acceptance_predicted = model.acceptance_predicted();
  r.bound = model.sampling_bound();
  r.exact = model.exact_sampling();
  auto fill_report = [&] {
    const CudaSamplingStats& stats = sampler.last_stats();
    r.candidates = stats.candidates;
    r.accepted = stats.accepted;
    r.rounds = static_cast<std::size_t>(stats.rounds);
    r.acceptance_measured = stats.acceptance_rate();
    r.seconds_flow = stats.flow_seconds;
    r.seconds_classifier = stats.margin_seconds;
    r.seconds_accept = stats.accept_seconds;
    r.seconds_total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  try {
    Matrix<float> out = sampler.sample(n);
    fill_report();
    if (options.on_round) options.on_round(out.rows(), n);
    return out;
  } catch (const SamplingError&) {
    fill_report();
    throw;
  }
#else
  (void)model;
  (void)n;
  (void)options;
  (void)report;
  no_cuda_backend();
#endif
}

}  // namespace detail

}  // namespace nfcal
