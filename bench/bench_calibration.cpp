// CPU benchmarks of calibration: XGBoost training (rows times rounds per second), margin
// prediction rows/s for 100 to 2,000 trees of depth 6, the log Z estimate on fresh flow
// samples, and calibrated sampling accepted rows/s end to end with the time split between the
// flow, the classifier and the accept/reject step, for both classifier inputs.
//
// Setting: D = 8, a MAF(5) with 2 hidden layers of 128 ReLU units and random weights, and an
// XGBoost classifier trained to tell the flow's samples from a shifted, rescaled copy of them, so
// its margins vary as a real calibration classifier's do. Models are built once per process.

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/rejection_sampler.hpp"
#include "nfcal/xgboost_classifier.hpp"

namespace {

using nfcal::Matrix;

constexpr int kDim = 8;

// A flow with random weights on its output layers, so samples are not a plain Gaussian.
const nfcal::Maf& bench_flow() {
  static const nfcal::Maf flow = [] {
    nfcal::MafConfig config;
    config.dim = kDim;
    config.layers = 5;
    config.hidden = 128;
    config.hidden_layers = 2;
    config.activation = nfcal::Activation::kRelu;  // as the reference stack's flow
    nfcal::Maf f(config);
    std::mt19937_64 engine(1);
    std::uniform_real_distribution<float> uniform(-0.05f, 0.05f);
    for (const auto& made : f.made_layers()) {
      const auto& out = f.tensors()[made.out_weight];
      for (int r = 0; r < out.rows; ++r) {
        for (int c = 0; c < made.out_prefix[r % kDim]; ++c) {
          f.parameters()[out.offset + static_cast<std::size_t>(r) * out.cols + c] = uniform(engine);
        }
      }
    }
    return f;
  }();
  return flow;
}

// "Data": flow samples moved and squeezed, so the classifier has something to learn.
Matrix<float> bench_data(std::size_t n) {
  Matrix<float> x = bench_flow().sample(n, 11);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (int d = 0; d < kDim; ++d) x(i, d) = 0.8f * x(i, d) + (d % 2 == 0 ? 0.3f : -0.2f);
  }
  return x;
}

// A classifier of `trees` rounds of depth 6, trained without early stopping. The caller keeps
// it until the process ends: XGBoost tears down its per-thread prediction state at exit before
// this program's statics are destroyed, and freeing a booster after that is a double free.
const std::shared_ptr<nfcal::XGBoostClassifier>& train_classifier(int trees) {
  nfcal::XGBoostParams params;
  params.trees = trees;
  params.max_depth = 6;
  params.early_stopping_rounds = 0;
  params.validation_fraction = 0.1;
  const Matrix<float> data = bench_data(20000);
  const Matrix<float> flow_rows = bench_flow().sample(20000, 12);
  return *new std::shared_ptr<nfcal::XGBoostClassifier>(std::make_shared<nfcal::XGBoostClassifier>(
      nfcal::XGBoostClassifier::train(data, flow_rows, params)));
}

// The same for latent input: the rows next to their base coordinates, 2 D features.
const std::shared_ptr<nfcal::XGBoostClassifier>& latent_classifier_500() {
  static const auto& classifier = [] {
    nfcal::XGBoostParams params;
    params.trees = 500;
    params.max_depth = 6;
    params.early_stopping_rounds = 0;
    params.validation_fraction = 0.1;
    const auto latent = nfcal::ClassifierInput::kDataAndLatent;
    const Matrix<float> data = bench_data(20000);
    Matrix<float> u(data.rows(), data.cols());
    std::vector<double> log_det(data.rows());
    bench_flow().forward(data.data(), data.rows(), u.data(), log_det.data());
    const Matrix<float> flow_rows = bench_flow().sample(20000, 12);
    return *new std::shared_ptr<nfcal::XGBoostClassifier>(
        std::make_shared<nfcal::XGBoostClassifier>(nfcal::XGBoostClassifier::train(
            nfcal::classifier_features(latent, data.data(), u.data(), data.rows(), kDim),
            nfcal::classifier_features_of_samples(latent, flow_rows, 12), params)));
  }();
  return classifier;
}

const nfcal::XGBoostClassifier& classifier_2000() {
  static const auto& classifier = train_classifier(2000);
  return *classifier;
}

const std::shared_ptr<nfcal::XGBoostClassifier>& classifier_500() {
  static const auto& classifier = train_classifier(500);
  return classifier;
}

// Margins of 65,536 rows with the first `trees` rounds of a 2,000-round model.
void BM_XGBoostMargins(benchmark::State& state) {
  const int trees = static_cast<int>(state.range(0));
  const nfcal::XGBoostClassifier& classifier = classifier_2000();
  const Matrix<float> x = bench_flow().sample(65536, 13);
  std::vector<float> out(x.rows());
  for (auto _ : state) {
    classifier.margins(x.data(), x.rows(), out.data(), trees);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.rows()));
  state.counters["trees"] = trees;
}
BENCHMARK(BM_XGBoostMargins)
    ->Arg(100)
    ->Arg(500)
    ->Arg(1000)
    ->Arg(2000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Training: 20,000 data rows against 20,000 flow rows, depth 6, held-out scoring after every
// round as calibrate() does it; items are rows times rounds.
void BM_XGBoostTrain(benchmark::State& state) {
  const int trees = static_cast<int>(state.range(0));
  nfcal::XGBoostParams params;
  params.trees = trees;
  params.max_depth = 6;
  params.early_stopping_rounds = 0;
  const Matrix<float> data = bench_data(20000);
  const Matrix<float> flow_rows = bench_flow().sample(20000, 12);
  // Boosters are released at once here, inside main, unlike the shared ones above.
  for (auto _ : state) {
    nfcal::XGBoostClassifier trained = nfcal::XGBoostClassifier::train(data, flow_rows, params);
    benchmark::DoNotOptimize(&trained);
  }
  const double rows = static_cast<double>(data.rows() + flow_rows.rows());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows * trees));
  state.counters["rounds_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * trees, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_XGBoostTrain)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

// log Z at ceiling log 2 on n fresh flow samples with 500 trees: sampling, margins and the
// log-mean-exp with its standard error; items are samples.
void BM_LogZ(benchmark::State& state) {
  const auto& classifier = classifier_500();
  const auto n = static_cast<std::size_t>(state.range(0));
  std::uint64_t seed = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        nfcal::estimate_flow_log_z(bench_flow(), *classifier, std::log(2.0), n, seed++).log_z);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(BM_LogZ)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Accepted rows/s of a calibrated model with 500 trees and ceiling log 2, with the time split
// between the flow, the classifier and the accept/reject step.
void run_calibrated_sampling(benchmark::State& state, const nfcal::CalibratedFlow& model) {
  const auto n = static_cast<std::size_t>(state.range(0));
  nfcal::SamplerReport total;
  std::uint64_t seed = 0;
  for (auto _ : state) {
    nfcal::SamplerOptions options;
    options.seed = seed++;
    nfcal::SamplerReport report;
    benchmark::DoNotOptimize(nfcal::sample_calibrated(model, n, options, &report).data());
    total.candidates += report.candidates;
    total.accepted += report.accepted;
    total.seconds_flow += report.seconds_flow;
    total.seconds_classifier += report.seconds_classifier;
    total.seconds_accept += report.seconds_accept;
    total.seconds_total += report.seconds_total;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.counters["acceptance"] =
      static_cast<double>(total.accepted) / static_cast<double>(total.candidates);
  state.counters["predicted"] = model.acceptance_predicted();
  state.counters["flow_share"] = total.seconds_flow / total.seconds_total;
  state.counters["classifier_share"] = total.seconds_classifier / total.seconds_total;
  state.counters["accept_share"] = total.seconds_accept / total.seconds_total;
  state.counters["candidates_per_s"] =
      benchmark::Counter(static_cast<double>(total.candidates), benchmark::Counter::kIsRate);
}

// The classifier scores the rows alone.
void BM_CalibratedSampling(benchmark::State& state) {
  const auto& classifier = classifier_500();
  const double ceiling = std::log(2.0);
  const nfcal::LogZEstimate log_z =
      nfcal::estimate_flow_log_z(bench_flow(), *classifier, ceiling, 100000, 14);
  run_calibrated_sampling(state, nfcal::CalibratedFlow(bench_flow(), classifier, ceiling, log_z));
}
BENCHMARK(BM_CalibratedSampling)
    ->Arg(10000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// calibrate()'s default: the classifier scores each candidate next to its base noise.
void BM_CalibratedSamplingLatent(benchmark::State& state) {
  const auto latent = nfcal::ClassifierInput::kDataAndLatent;
  const auto& classifier = latent_classifier_500();
  const double ceiling = std::log(2.0);
  const nfcal::LogZEstimate log_z =
      nfcal::estimate_flow_log_z(bench_flow(), *classifier, ceiling, 100000, 14, latent);
  run_calibrated_sampling(
      state, nfcal::CalibratedFlow(bench_flow(), classifier, ceiling, log_z, 0, "{}", latent));
}
BENCHMARK(BM_CalibratedSamplingLatent)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
