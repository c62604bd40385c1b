// CPU benchmarks of the MAF: density rows/s, sampling rows/s with the degree-ordered pass and
// the naive D-pass reference side by side, and training rows/s (one Adam-free gradient step
// per iteration, batch 512). Architecture as the common PyTorch MAF: 5 layers, 2 hidden
// layers per MADE, ReLU units. Sizes: D in {8, 64, 784}, hidden in {64, 256, 1024}.
// BM_MafLogProbActivation compares the density pass across activations (tanh is the default).
//
// Counters: rows/s as items_per_second; FLOP/s counts the unmasked multiply-adds only
// (two FLOPs each), so it reads against the hardware's useful peak.

#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "nfcal/maf.hpp"

namespace {

using nfcal::Maf;
using nfcal::MafConfig;
using nfcal::Matrix;

// A trained-looking flow: random weights on every unmasked entry, outputs kept modest.
Maf make_flow(int dim, int hidden, nfcal::Activation activation = nfcal::Activation::kRelu) {
  MafConfig config;
  config.dim = dim;
  config.hidden = hidden;
  config.layers = 5;
  config.hidden_layers = 2;
  config.activation = activation;
  Maf flow(config);
  std::mt19937_64 engine(1);
  std::uniform_real_distribution<float> uniform(-0.05f, 0.05f);
  const auto& tensors = flow.tensors();
  for (const auto& made : flow.made_layers()) {
    const auto& out = tensors[made.out_weight];
    for (int r = 0; r < out.rows; ++r) {
      for (int c = 0; c < made.out_prefix[r % dim]; ++c) {
        flow.parameters()[out.offset + static_cast<std::size_t>(r) * out.cols + c] =
            uniform(engine);
      }
    }
  }
  return flow;
}

// Unmasked multiply-adds of one row through the whole flow.
double multiply_adds_per_row(const Maf& flow) {
  double total = 0;
  for (const auto& made : flow.made_layers()) {
    for (const auto& prefix : made.prefix) {
      for (int p : prefix) total += p;
    }
    for (int p : made.out_prefix) total += 2.0 * p;
  }
  return total;
}

Matrix<float> noise(std::size_t n, int dim) { return Maf::base_noise(n, dim, 3); }

// Items are rows; bytes are the rows' values read and written (the weights stay in cache);
// FLOP/s counts the unmasked multiply-adds of `passes` network passes per row.
void set_counters(benchmark::State& state, const Maf& flow, std::size_t rows, double passes,
                  std::size_t bytes_per_row) {
  const double processed = static_cast<double>(state.iterations()) * static_cast<double>(rows);
  state.SetItemsProcessed(static_cast<std::int64_t>(processed));
  state.SetBytesProcessed(static_cast<std::int64_t>(processed * bytes_per_row));
  state.counters["FLOP/s"] = benchmark::Counter(
      processed * 2.0 * multiply_adds_per_row(flow) * passes, benchmark::Counter::kIsRate);
}

void BM_MafLogProb(benchmark::State& state) {
  const int dim = static_cast<int>(state.range(0));
  const int hidden = static_cast<int>(state.range(1));
  const Maf flow = make_flow(dim, hidden);
  const std::size_t rows = dim >= 784 ? 2048 : 8192;
  const Matrix<float> x = noise(rows, dim);
  std::vector<float> out(rows);
  for (auto _ : state) {
    flow.log_prob(x.data(), rows, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, flow, rows, 1.0, (flow.dim() + 1) * sizeof(float));
}

void BM_MafLogProbActivation(benchmark::State& state) {
  const auto activation = static_cast<nfcal::Activation>(state.range(0));
  const Maf flow = make_flow(static_cast<int>(state.range(1)), 256, activation);
  const std::size_t rows = 8192;
  const Matrix<float> x = noise(rows, flow.dim());
  std::vector<float> out(rows);
  for (auto _ : state) {
    flow.log_prob(x.data(), rows, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, flow, rows, 1.0, (flow.dim() + 1) * sizeof(float));
  state.SetLabel(nfcal::to_string(activation));
}

void BM_MafSampleDegreeOrdered(benchmark::State& state) {
  const int dim = static_cast<int>(state.range(0));
  const int hidden = static_cast<int>(state.range(1));
  const Maf flow = make_flow(dim, hidden);
  const std::size_t rows = dim >= 784 ? 1024 : 4096;
  const Matrix<float> u = noise(rows, dim);
  Matrix<float> x(rows, static_cast<std::size_t>(dim));
  for (auto _ : state) {
    flow.inverse(u.data(), rows, x.data());
    benchmark::DoNotOptimize(x.data());
  }
  set_counters(state, flow, rows, 1.0, 2 * dim * sizeof(float));
}

void BM_MafSampleNaiveDPass(benchmark::State& state) {
  const int dim = static_cast<int>(state.range(0));
  const int hidden = static_cast<int>(state.range(1));
  const Maf flow = make_flow(dim, hidden);
  // D network passes per layer: keep the batch small at large D.
  const std::size_t rows = dim >= 784 ? 16 : (dim >= 64 ? 256 : 2048);
  const Matrix<float> u = noise(rows, dim);
  Matrix<float> x(rows, static_cast<std::size_t>(dim));
  for (auto _ : state) {
    flow.inverse_naive(u.data(), rows, x.data());
    benchmark::DoNotOptimize(x.data());
  }
  set_counters(state, flow, rows, static_cast<double>(dim), 2 * dim * sizeof(float));
}

void BM_MafTrainStep(benchmark::State& state) {
  const int dim = static_cast<int>(state.range(0));
  const int hidden = static_cast<int>(state.range(1));
  const Maf flow = make_flow(dim, hidden);
  const std::size_t rows = 512;
  const Matrix<float> x = noise(rows, dim);
  std::vector<float> grad(flow.num_parameters());
  for (auto _ : state) {
    benchmark::DoNotOptimize(flow.loss_and_gradient(x.data(), rows, grad.data()));
  }
  // Forward plus two backward products: about three times the density pass's work.
  set_counters(state, flow, rows, 3.0, dim * sizeof(float));
}

void sizes(benchmark::internal::Benchmark* bench) {
  for (int dim : {8, 64, 784}) {
    for (int hidden : {64, 256, 1024}) bench->Args({dim, hidden});
  }
  bench->ArgNames({"D", "hidden"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_MafLogProb)->Apply(sizes);
BENCHMARK(BM_MafLogProbActivation)
    ->ArgsProduct({{static_cast<int>(nfcal::Activation::kRelu),
                    static_cast<int>(nfcal::Activation::kTanh),
                    static_cast<int>(nfcal::Activation::kElu)},
                   {8, 64}})
    ->ArgNames({"activation", "D"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MafSampleDegreeOrdered)->Apply(sizes);
BENCHMARK(BM_MafSampleNaiveDPass)->Apply(sizes)->Iterations(1);
BENCHMARK(BM_MafTrainStep)->Apply(sizes);

}  // namespace
