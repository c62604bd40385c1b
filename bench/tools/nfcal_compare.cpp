// nfcal's side of the comparison with the PyTorch/XGBoost baseline (bench/baselines/), built
// against the installed nfcal package and using its public API only.
//
//   nfcal_compare prepare DIR            train/validation/test .npy of the 8-D mixture
//   nfcal_compare check-flow FLOW_DIR    loads a flow the baseline exported and compares
//                                        nfcal's float64 log densities with the baseline's
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

  // Train, recording each epoch's time since the start; stop at the first epoch on target.
  nfcal::Maf flow(mc);
  json history = json::array();
  json out{{"target", target}, {"reached", false}, {"seconds", nullptr}, {"epochs", nullptr}};
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

json calibrated(const Arguments& args) {
  const nfcal::Maf flow = load_exported_flow(args.at(0, "FLOW_DIR")).cast<float>();
  const auto classifier = std::make_shared<nfcal::XGBoostClassifier>(
      nfcal::XGBoostClassifier::load(args.at(1, "CLASSIFIER")));
  const nfcal::Matrix<float> rows = nfcal::read_npy_float(args.at(2, "ROWS"));
  const double min_seconds = args.number("min-seconds", 1.0);
  const auto count = static_cast<std::size_t>(args.integer("samples", 100000));
  const double ceiling = std::log(2.0);
  json out;

  // The flow alone on the baseline's rows: density and degree-ordered sampling.
  std::vector<float> log_density(rows.rows());
  out["density_rows_per_s"] =
      rows_per_second([&] { flow.log_prob(rows.data(), rows.rows(), log_density.data()); },
                      rows.rows(), min_seconds);
  const std::size_t sample_rows = 4096;
  std::uint64_t seed = 0;
  out["flow_sampling_rows_per_s"] =
      rows_per_second([&] { flow.sample(sample_rows, seed++); }, sample_rows, min_seconds);

  // Margins of the baseline's rows with the baseline's trees.
  std::vector<float> margins(rows.rows());
  out["margin_rows_per_s"] =
      rows_per_second([&] { classifier->margins(rows.data(), rows.rows(), margins.data()); },
                      rows.rows(), min_seconds);
  out["trees"] = classifier->num_trees();

  // Calibrated samples end to end: flow candidates, margins, accept/reject.
  const nfcal::LogZEstimate log_z =
      nfcal::estimate_flow_log_z(flow, *classifier, ceiling, 100000, 5);
  const nfcal::CalibratedFlow model(flow, classifier, ceiling, log_z);
  nfcal::SamplerOptions options;
  options.seed = 6;
  nfcal::SamplerReport report;
  const auto start = Clock::now();
  const nfcal::Matrix<float> samples = nfcal::sample_calibrated(model, count, options, &report);
  const double seconds = seconds_since(start);
  out["calibrated_samples_per_s"] = static_cast<double>(samples.rows()) / seconds;
  out["acceptance"] = report.acceptance_measured;
  out["acceptance_predicted"] = report.acceptance_predicted;
  out["log_z"] = log_z.log_z;
  out["seconds_flow"] = report.seconds_flow;
  out["seconds_classifier"] = report.seconds_classifier;
  out["seconds_accept"] = report.seconds_accept;
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
  nfcal::CalibrationReport report;
  const auto start = Clock::now();
  const nfcal::CalibratedFlow model = nfcal::calibrate(flow, train, options, &report);
  const double seconds = seconds_since(start);

  json out;
  out["flow_test_log_likelihood"] = mean(flow.log_prob(test));
  out["calibrated_test_log_likelihood"] = mean(model.log_prob(test));
  out["ceiling"] = report.ceiling;
  out["acceptance_predicted"] = report.acceptance_predicted;
  out["trees_kept"] = report.classifier.trees_kept;
  out["flow_ratio"] = options.flow_ratio;
  out["classifier_input"] = nfcal::to_string(options.classifier_input);
  out["seconds"] = seconds;
  return out;
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: nfcal_compare prepare|check-flow|train|calibrated|quality ARGS "
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
  } else if (mode == "train") {
    out = train_to_target(args);
  } else if (mode == "calibrated") {
    out = calibrated(args);
  } else if (mode == "quality") {
    out = quality(args);
  } else {
    throw nfcal::InvalidArgument("unknown mode '" + mode +
                                 "': expected prepare, check-flow, train, calibrated or quality");
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
