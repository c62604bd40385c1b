// nfcal's side of the comparison with the PyTorch/XGBoost baseline (bench/baselines/), built
// against the installed nfcal package and using its public API only.
//
//   nfcal_compare prepare DIR            train/validation/test .npy of the 8-D mixture
//   nfcal_compare check-flow FLOW_DIR    loads a flow the baseline exported and compares
//                                        nfcal's float64 log densities with the baseline's
//   nfcal_compare device                 the device --device names, whether this nfcal has
//                                        the CUDA backend and how many GPUs it sees; fails
//                                        when the device cannot be used
//   nfcal_compare train DIR              training time to a target validation log-likelihood
//   nfcal_compare calibrated FLOW_DIR CLASSIFIER ROWS
//                                        density, sampling and margin rows/s and calibrated
//                                        samples/s end to end with the baseline's own flow
//                                        and classifier
//   nfcal_compare quality FLOW_DIR DIR   calibrate() with its defaults on DIR/train.npy for
//                                        the baseline's trained flow, and the test
//                                        log-likelihoods of both models on DIR/test.npy
//                                        (--trees, --classifier-input override defaults)
//
// Options are "--name value" pairs after the positional arguments; every mode prints one
// JSON object on stdout and exits 1 with a message on stderr when something is wrong
// (check-flow: when the densities disagree by more than --tolerance).
//
// --device cpu|cuda|cuda:N (default cpu) sets where train, calibrated and quality compute;
// their JSON names it in "device". On a GPU, calibrated keeps the flow, the booster and the
// rows in device memory, as the baseline keeps its tensors, and waits for the device before
// it reads the clock (nfcal::CudaMaf, CudaBooster, CudaCalibratedSampler; the package defines
// NFCAL_WITH_CUDA when it has them); its "*_api" rates time the one-call entry points of
// nfcal/compute.hpp and sample_calibrated, which copy the model and the rows on every call.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nfcal/nfcal.hpp"

#if defined(NFCAL_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Positional arguments and "--name value" options of one invocation.
struct Arguments {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;

  double number(const std::string& name, double fallback) const {
    const auto found = options.find(name);
    return found == options.end() ? fallback : std::stod(found->second);
  }
  int integer(const std::string& name, int fallback) const {
    return static_cast<int>(number(name, fallback));
  }
  std::string text(const std::string& name, const std::string& fallback) const {
    const auto found = options.find(name);
    return found == options.end() ? fallback : found->second;
  }
  const std::string& at(std::size_t index, const std::string& what) const {
    if (index >= positional.size()) throw nfcal::InvalidArgument("missing argument " + what);
    return positional[index];
  }
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  for (int i = 2; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.rfind("--", 0) != 0) {
      args.positional.push_back(word);
      continue;
    }
    if (i + 1 >= argc) throw nfcal::InvalidArgument("option " + word + " needs a value");
    args.options[word.substr(2)] = argv[++i];
  }
  return args;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw nfcal::FileError("cannot open " + path);
  return json::parse(in);
}

// The device --device names. Throws InvalidArgument, with nfcal's reason, when this build has
// no CUDA backend or the machine no such GPU.
nfcal::Device device_of(const Arguments& args) {
  return nfcal::Device::parse(args.text("device", "cpu"));
}

// Calls step() once to warm up, then until min_seconds have passed; rows per second.
template <typename Step>
double rows_per_second(Step step, std::size_t rows, double min_seconds) {
  step();
  std::size_t calls = 0;
  const auto start = Clock::now();
  while (true) {
    step();
    ++calls;
    const double elapsed = seconds_since(start);
    if (elapsed >= min_seconds) return static_cast<double>(calls * rows) / elapsed;
  }
}

#if defined(NFCAL_WITH_CUDA)
void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw nfcal::CudaError(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

// Waits for the device, so that the clock read after it includes the queued work.
void synchronize() { cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

// Device memory for n values of T, freed when it goes out of scope.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) {
    void* memory = nullptr;
    cuda_check(cudaMalloc(&memory, std::max<std::size_t>(n, 1) * sizeof(T)), "cudaMalloc");
    data_ = static_cast<T*>(memory);
  }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* data() const { return data_; }

 private:
  T* data_ = nullptr;
};

// The classifier as a booster on the GPU.
nfcal::CudaBooster device_booster(const nfcal::XGBoostClassifier& classifier, int device) {
  const std::string bytes = classifier.to_bytes("ubj");
  return nfcal::CudaBooster(std::vector<char>(bytes.begin(), bytes.end()),
                            classifier.num_features(), classifier.balance(), device);
}
#endif

// ---------------------------------------------------------------------------------------
// prepare

// The calibration workload's data: the built-in 8-D mixture of ten Gaussians, three disjoint
// draws, and the true mean log density of the test rows.
json prepare(const Arguments& args) {
  const std::string dir = args.at(0, "DIR");
  const std::map<std::string, std::pair<std::size_t, std::uint64_t>> parts = {
      {"train", {static_cast<std::size_t>(args.integer("train", 97200)), 1}},
      {"validation", {static_cast<std::size_t>(args.integer("validation", 10800)), 2}},
      {"test", {static_cast<std::size_t>(args.integer("test", 20000)), 3}}};
  json out;
  for (const auto& [name, part] : parts) {
    const nfcal::Matrix<double> x = nfcal::make_dataset("mixture-8d", part.first, part.second);
    nfcal::Matrix<float> x32(x.rows(), x.cols());
    std::copy(x.data(), x.data() + x.size(), x32.data());
    nfcal::write_npy(dir + "/" + name + ".npy", x32);
    out[name + "_rows"] = x.rows();
  }

  // The truth is computed on the float32 rows both sides read.
  const nfcal::Matrix<double> test = nfcal::read_npy(dir + "/test.npy");
  const std::vector<double> truth = nfcal::dataset_log_prob("mixture-8d", test);
  double sum = 0;
  for (double v : truth) sum += v;
  out["dataset"] = "mixture-8d";
  out["true_test_log_likelihood"] = sum / static_cast<double>(truth.size());
  return out;
}

// ---------------------------------------------------------------------------------------
// Loading a flow the baseline exported

// Throws unless nfcal's layout for this configuration is the exported one: same orders and
// same hidden degrees, so that every tensor means the same thing on both sides.
void check_layout(const nfcal::BasicMaf<double>& flow, const json& config) {
  const auto& made = flow.made_layers();
  const auto orders = config.at("orders").get<std::vector<std::vector<int>>>();
  const auto degrees = config.at("hidden_degrees").get<std::vector<int>>();
  if (orders.size() != made.size()) {
    throw nfcal::DataError("exported flow has " + std::to_string(orders.size()) +
                           " layer orders, nfcal builds " + std::to_string(made.size()));
  }
  for (std::size_t l = 0; l < made.size(); ++l) {
    if (made[l].order != orders[l]) {
      throw nfcal::DataError("layer " + std::to_string(l) + ": exported order differs");
    }
    if (made[l].hidden_degrees != degrees) {
      throw nfcal::DataError("layer " + std::to_string(l) + ": hidden degrees differ");
    }
  }
}

// Copies DIR/<tensor name>.npy into the flat parameter vector, checking every shape.
void load_tensors(nfcal::BasicMaf<double>& flow, const std::string& dir, const json& config) {
  if (config.at("tensors").size() != flow.tensors().size()) {
    throw nfcal::DataError("exported flow has " + std::to_string(config.at("tensors").size()) +
                           " tensors, nfcal expects " + std::to_string(flow.tensors().size()));
  }
  for (const nfcal::TensorSpec& spec : flow.tensors()) {
    const nfcal::Matrix<double> value = nfcal::read_npy(dir + "/" + spec.name + ".npy");
    if (value.rows() != static_cast<std::size_t>(spec.rows) ||
        value.cols() != static_cast<std::size_t>(spec.cols)) {
      throw nfcal::DataError(spec.name + ": shape (" + std::to_string(value.rows()) + ", " +
                             std::to_string(value.cols()) + "), expected (" +
                             std::to_string(spec.rows) + ", " + std::to_string(spec.cols) + ")");
    }
    std::copy(value.data(), value.data() + value.size(),
              flow.parameters().begin() + static_cast<std::ptrdiff_t>(spec.offset));
  }
}

// A flow exported by the baseline, in float64.
nfcal::BasicMaf<double> load_exported_flow(const std::string& dir) {
  const json config = read_json(dir + "/config.json");
  nfcal::MafConfig mc;
  mc.dim = config.at("dim").get<int>();
  mc.layers = config.at("layers").get<int>();
  mc.hidden = config.at("hidden").get<int>();
  mc.hidden_layers = config.at("hidden_layers").get<int>();
  mc.activation = nfcal::parse_activation(config.at("activation").get<std::string>());
  mc.max_log_scale = config.at("max_log_scale").get<double>();
  mc.batch_norm = config.at("batch_norm").get<bool>();
  mc.ordering = nfcal::Ordering::kReversed;
  nfcal::BasicMaf<double> flow(mc);

  check_layout(flow, config);
  std::fill(flow.parameters().begin(), flow.parameters().end(), 0.0);
  load_tensors(flow, dir, config);
  nfcal::Standardization standardization;
  standardization.shift = config.at("shift").get<std::vector<double>>();
  standardization.scale = config.at("scale").get<std::vector<double>>();
  flow.set_standardization(standardization);
  return flow;
}

// Largest |a - b| over two sequences of equal length.
template <typename A, typename B>
double max_abs_difference(const std::vector<A>& a, const std::vector<B>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return worst;
}

// ---------------------------------------------------------------------------------------
// check-flow

json check_flow(const Arguments& args) {
  const std::string dir = args.at(0, "FLOW_DIR");
  const double tolerance = args.number("tolerance", 1e-4);
  const nfcal::BasicMaf<double> flow = load_exported_flow(dir);
  const nfcal::Matrix<double> rows = nfcal::read_npy(dir + "/rows.npy");
  const nfcal::Matrix<double> expected = nfcal::read_npy(dir + "/log_prob.npy");
  const std::vector<double> want(expected.data(), expected.data() + expected.size());

  // float64 is the equal-work check; float32 (what the benchmarks run) is reported beside it.
  const std::vector<double> got = flow.log_prob(rows);
  const nfcal::Maf flow32 = flow.cast<float>();
  nfcal::Matrix<float> rows32(rows.rows(), rows.cols());
  std::copy(rows.data(), rows.data() + rows.size(), rows32.data());
  const std::vector<float> got32 = flow32.log_prob(rows32);

  json out;
  out["flow"] = dir;
  out["dim"] = flow.dim();
  out["hidden"] = flow.config().hidden;
  out["rows"] = rows.rows();
  out["max_abs_diff_float64"] = max_abs_difference(got, want);
  out["max_abs_diff_float32"] = max_abs_difference(got32, want);
  out["tolerance"] = tolerance;
  out["agree"] = out["max_abs_diff_float64"].get<double>() <= tolerance;
  return out;
}

// ---------------------------------------------------------------------------------------
// train

// Thrown from the epoch callback to end training once the target is reached.
struct TargetReached {};

json train_to_target(const Arguments& args) {
  const nfcal::Device device = device_of(args);
  const std::string dir = args.at(0, "DIR");
  const double target = args.number("target", -12.0);
  const nfcal::Matrix<float> train = nfcal::read_npy_float(dir + "/train.npy");
  const nfcal::Matrix<float> validation = nfcal::read_npy_float(dir + "/validation.npy");

  // The baseline's architecture and optimizer settings.
  nfcal::MafConfig mc;
  mc.dim = static_cast<int>(train.cols());
  mc.hidden = args.integer("hidden", 128);
  mc.layers = 5;
  mc.hidden_layers = 2;
  mc.seed = static_cast<std::uint64_t>(args.integer("seed", 0));
  nfcal::TrainConfig tc;
  tc.epochs = args.integer("max-epochs", 40);
  tc.batch_size = args.integer("batch-size", 256);
  tc.learning_rate = args.number("learning-rate", 1e-3);
  tc.patience = tc.epochs;
  tc.seed = mc.seed;
  tc.device = device;

  // Train, recording each epoch's time since the start; stop at the first epoch on target.
  nfcal::Maf flow(mc);
  if (device.is_cuda()) {
    // The GPU's context and the flow's kernels are set up before the clock starts, as the
    // baseline warms up before it trains.
    nfcal::log_prob(flow, nfcal::sample(flow, 256, 0, device), device);
  }
  json history = json::array();
  json out{{"target", target},
           {"reached", false},
           {"seconds", nullptr},
           {"epochs", nullptr},
           {"device", device.to_string()}};
  const auto start = Clock::now();
  try {
    nfcal::fit(flow, train, &validation, tc, [&](const nfcal::EpochReport& report) {
      const double elapsed = seconds_since(start);
      history.push_back({{"epoch", report.epoch},
                         {"validation_log_likelihood", report.validation_log_likelihood},
                         {"seconds", elapsed}});
      std::cerr << "nfcal epoch " << report.epoch << ": validation "
                << report.validation_log_likelihood << " at " << elapsed << " s\n";
      if (report.validation_log_likelihood < target) return;
      out["reached"] = true;
      out["seconds"] = elapsed;
      out["epochs"] = report.epoch;
      throw TargetReached{};
    });
  } catch (const TargetReached&) {
  }
  out["history"] = history;
  return out;
}

// ---------------------------------------------------------------------------------------
// calibrated

#if defined(NFCAL_WITH_CUDA)
// Density, sampling and margin rows/s on the GPU, with the flow, the booster and the rows in
// device memory; every timed call ends when the device has finished it.
void flow_and_margins_on_device(const nfcal::Maf& flow, const nfcal::XGBoostClassifier& classifier,
                                const nfcal::Matrix<float>& rows, int device,
                                std::size_t sample_rows, double min_seconds, json& out) {
  cuda_check(cudaSetDevice(device), "cudaSetDevice");
  const nfcal::CudaMaf gpu(flow, device);
  const std::size_t n = rows.rows();
  DeviceArray<float> x(rows.size()), log_density(n), margins(n);
  DeviceArray<float> samples(sample_rows * static_cast<std::size_t>(flow.dim()));
  cuda_check(cudaMemcpy(x.data(), rows.data(), rows.size() * sizeof(float), cudaMemcpyHostToDevice),
             "cudaMemcpy");
  out["density_rows_per_s"] = rows_per_second(
      [&] {
        gpu.log_prob(x.data(), n, log_density.data());
        synchronize();
      },
      n, min_seconds);
  out["density_path"] = gpu.density_path() == nfcal::DensityPath::kFused ? "fused" : "general";
  std::uint64_t seed = 0;
  out["flow_sampling_rows_per_s"] = rows_per_second(
      [&] {
        gpu.sample(sample_rows, seed++, 0, samples.data());
        synchronize();
      },
      sample_rows, min_seconds);
  const nfcal::CudaBooster booster = device_booster(classifier, device);
  out["margin_rows_per_s"] = rows_per_second(
      [&] {
        booster.margins(x.data(), n, margins.data(), nullptr);
        synchronize();
      },
      n, min_seconds);
}

// Calibrated samples/s on the GPU with the flow and the booster resident and the samples left
// in device memory, as the baseline's are, after one smaller warm-up run.
void calibrated_sampling_on_device(const nfcal::CalibratedFlow& model,
                                   const nfcal::XGBoostClassifier& classifier, std::size_t count,
                                   int device, json& out) {
  cuda_check(cudaSetDevice(device), "cudaSetDevice");
  const nfcal::CudaMaf gpu(model.flow(), device);
  const nfcal::CudaBooster booster = device_booster(classifier, device);
  nfcal::CudaSamplerConfig config;
  config.ceiling = static_cast<float>(model.sampling_bound());
  config.seed = 6;
  nfcal::CudaCalibratedSampler sampler(gpu, booster, config);
  DeviceArray<float> samples(count * static_cast<std::size_t>(model.dim()));
  sampler.sample(std::min<std::size_t>(count, 10000), samples.data());
  synchronize();
  const auto start = Clock::now();
  sampler.sample(count, samples.data());
  synchronize();
  const double seconds = seconds_since(start);
  const nfcal::CudaSamplingStats& stats = sampler.last_stats();
  out["calibrated_samples_per_s"] = static_cast<double>(count) / seconds;
  out["acceptance"] = stats.acceptance_rate();
  out["seconds_flow"] = stats.flow_seconds;
  out["seconds_classifier"] = stats.margin_seconds;
  out["seconds_accept"] = stats.accept_seconds;
}
#else
// Device::parse refuses a CUDA device in a build without the CUDA backend; this is a guard.
[[noreturn]] void no_cuda_backend() {
  throw nfcal::InvalidArgument("this nfcal has no CUDA backend; use --device cpu");
}
#endif

json calibrated(const Arguments& args) {
  const nfcal::Device device = device_of(args);
  const nfcal::Maf flow = load_exported_flow(args.at(0, "FLOW_DIR")).cast<float>();
  const auto classifier = std::make_shared<nfcal::XGBoostClassifier>(
      nfcal::XGBoostClassifier::load(args.at(1, "CLASSIFIER")));
  const nfcal::Matrix<float> rows = nfcal::read_npy_float(args.at(2, "ROWS"));
  const double min_seconds = args.number("min-seconds", 1.0);
  // A GPU needs larger batches to be busy; the baseline's defaults scale the same way.
  const auto count =
      static_cast<std::size_t>(args.integer("samples", device.is_cuda() ? 1000000 : 100000));
  const auto sample_rows =
      static_cast<std::size_t>(args.integer("sample-rows", device.is_cuda() ? 65536 : 4096));
  const double ceiling = std::log(2.0);
  json out;
  out["device"] = device.to_string();
  out["flow_sampling_batch"] = sample_rows;
  out["samples"] = count;

  if (device.is_cuda()) {
#if defined(NFCAL_WITH_CUDA)
    flow_and_margins_on_device(flow, *classifier, rows, device.index, sample_rows, min_seconds,
                               out);
#else
    no_cuda_backend();
#endif
    // The one-call entry points of nfcal/compute.hpp, which copy the flow and the rows to the
    // GPU and the results back on every call.
    out["density_rows_per_s_api"] =
        rows_per_second([&] { nfcal::log_prob(flow, rows, device); }, rows.rows(), min_seconds);
    std::uint64_t seed = 0;
    out["flow_sampling_rows_per_s_api"] = rows_per_second(
        [&] { nfcal::sample(flow, sample_rows, seed++, device); }, sample_rows, min_seconds);
  } else {
    // The flow alone on the baseline's rows: density and degree-ordered sampling.
    std::vector<float> log_density(rows.rows());
    out["density_rows_per_s"] =
        rows_per_second([&] { flow.log_prob(rows.data(), rows.rows(), log_density.data()); },
                        rows.rows(), min_seconds);
    std::uint64_t seed = 0;
    out["flow_sampling_rows_per_s"] =
        rows_per_second([&] { flow.sample(sample_rows, seed++); }, sample_rows, min_seconds);

    // Margins of the baseline's rows with the baseline's trees.
    std::vector<float> margins(rows.rows());
    out["margin_rows_per_s"] =
        rows_per_second([&] { classifier->margins(rows.data(), rows.rows(), margins.data()); },
                        rows.rows(), min_seconds);
  }
  out["trees"] = classifier->num_trees();

  // Calibrated samples end to end: flow candidates, margins, accept/reject. On a GPU,
  // sample_calibrated also copies the flow and the booster there and the samples back.
  const nfcal::LogZEstimate log_z =
      nfcal::estimate_flow_log_z(flow, *classifier, ceiling, 100000, 5);
  const nfcal::CalibratedFlow model(flow, classifier, ceiling, log_z);
  nfcal::SamplerOptions options;
  options.seed = 6;
  options.device = device;
  nfcal::SamplerReport report;
  const auto start = Clock::now();
  const nfcal::Matrix<float> samples = nfcal::sample_calibrated(model, count, options, &report);
  const double seconds = seconds_since(start);
  const double samples_per_s = static_cast<double>(samples.rows()) / seconds;
  out["acceptance_predicted"] = report.acceptance_predicted;
  out["log_z"] = log_z.log_z;
  if (device.is_cuda()) {
    out["calibrated_samples_per_s_api"] = samples_per_s;
#if defined(NFCAL_WITH_CUDA)
    calibrated_sampling_on_device(model, *classifier, count, device.index, out);
#endif
  } else {
    out["calibrated_samples_per_s"] = samples_per_s;
    out["acceptance"] = report.acceptance_measured;
    out["seconds_flow"] = report.seconds_flow;
    out["seconds_classifier"] = report.seconds_classifier;
    out["seconds_accept"] = report.seconds_accept;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// quality

double mean(const std::vector<float>& values) {
  double sum = 0;
  for (float v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

// nfcal's calibration, with its defaults, of the flow the baseline trained, on the same rows:
// what the calibration alone adds, with the flow held equal.
json quality(const Arguments& args) {
  const nfcal::Device device = device_of(args);
  const nfcal::Maf flow = load_exported_flow(args.at(0, "FLOW_DIR")).cast<float>();
  const std::string dir = args.at(1, "DIR");
  const nfcal::Matrix<float> train = nfcal::read_npy_float(dir + "/train.npy");
  const nfcal::Matrix<float> test = nfcal::read_npy_float(dir + "/test.npy");

  nfcal::CalibrationOptions options;
  options.seed = static_cast<std::uint64_t>(args.integer("seed", 0));
  options.classifier.seed = options.seed;
  options.classifier.trees = args.integer("trees", options.classifier.trees);
  options.classifier_input = nfcal::parse_classifier_input(
      args.text("classifier-input", nfcal::to_string(options.classifier_input)));
  // On a GPU the flow samples are drawn there and XGBoost trains there, as `nfcal calibrate
  // --device` does.
  options.device = device;
  options.classifier.device = device.is_cuda() ? device.to_string() : "cpu";
  nfcal::CalibrationReport report;
  const auto start = Clock::now();
  const nfcal::CalibratedFlow model = nfcal::calibrate(flow, train, options, &report);
  const double seconds = seconds_since(start);

  json out;
  out["flow_test_log_likelihood"] = mean(nfcal::log_prob(flow, test, device));
  out["calibrated_test_log_likelihood"] = mean(nfcal::log_prob(model, test, device));
  out["ceiling"] = report.ceiling;
  out["acceptance_predicted"] = report.acceptance_predicted;
  out["trees_kept"] = report.classifier.trees_kept;
  out["flow_ratio"] = options.flow_ratio;
  out["classifier_input"] = nfcal::to_string(options.classifier_input);
  out["seconds"] = seconds;
  out["device"] = device.to_string();

  // The most any classifier could reach with this flow: the exact density ratio, clipped at
  // nfcal's ceiling and at the baseline's log 2.
  const nfcal::LogDensityFunction truth = [](const nfcal::Matrix<double>& x) {
    return nfcal::dataset_log_prob("mixture-8d", x);
  };
  const std::size_t samples = options.resolved_log_z_samples();
  out["exact_ratio_test_log_likelihood"] =
      nfcal::exact_ratio_reference(flow, truth, test, report.ceiling, samples, options.seed + 3)
          .log_likelihood;
  out["exact_ratio_log2_test_log_likelihood"] =
      nfcal::exact_ratio_reference(flow, truth, test, std::log(2.0), samples, options.seed + 3)
          .log_likelihood;
  return out;
}

// ---------------------------------------------------------------------------------------
// device

// Whether --device can be used, before anything is measured.
json device_info(const Arguments& args) {
  const nfcal::Device device = device_of(args);
  json out;
  out["device"] = device.to_string();
  out["cuda_compiled"] = nfcal::cuda_compiled();
  out["cuda_devices"] = nfcal::cuda_device_count();
  out["xgboost"] = nfcal::xgboost_version();
  return out;
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: nfcal_compare prepare|check-flow|device|train|calibrated|quality ARGS "
                 "[--name value]\n";
    return 2;
  }
  const std::string mode = argv[1];
  const Arguments args = parse_arguments(argc, argv);
  nfcal::set_num_threads(args.integer("threads", 2));
  json out;
  if (mode == "prepare") {
    out = prepare(args);
  } else if (mode == "check-flow") {
    out = check_flow(args);
  } else if (mode == "device") {
    out = device_info(args);
  } else if (mode == "train") {
    out = train_to_target(args);
  } else if (mode == "calibrated") {
    out = calibrated(args);
  } else if (mode == "quality") {
    out = quality(args);
  } else {
    throw nfcal::InvalidArgument(
        "unknown mode '" + mode +
        "': expected prepare, check-flow, device, train, calibrated or quality");
  }
  std::cout << out.dump(1) << "\n";
  return mode == "check-flow" && !out["agree"].get<bool>() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "nfcal_compare: " << error.what() << "\n";
    return 1;
  }
}
