// GPU rows of nfcal_bench: MAF density (fused and general paths), sampling (degree-ordered
// kernel and the naive D-pass kernel), training epochs (gradient and Adam step), XGBoost margins
// from device arrays, the fused accept kernel with compaction, and calibrated sampling end to end
// with the time of each stage.
//
// Timing: CUDA events around each iteration's launches (manual time), after one warm-up
// call; no host synchronization inside the measured span other than what the API requires.
// Counters: items_per_second is rows/s; "flop_per_s" counts the unmasked multiply-adds of the
// flow (two FLOPs each), "bytes_per_s" the bytes a pass must move to and from device memory,
// so both read against the hardware's limits. Without a CUDA device every row is skipped
// with the reason. Architecture: 5 MADE layers of 2 hidden layers of ReLU units, as the CPU
// rows.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "nfcal/cuda.hpp"
#include "nfcal/device.hpp"
#include "nfcal/maf.hpp"

#include "cuda_accept.cuh"
#include "cuda_check.cuh"

namespace {

using nfcal::cuda_detail::DeviceBuffer;

// A flow whose output layers are random too (a fresh one is the identity), masks respected.
nfcal::Maf bench_flow(int dim, int hidden) {
  nfcal::MafConfig config;
  config.dim = dim;
  config.hidden = hidden;
  config.layers = 5;
  config.hidden_layers = 2;
  config.activation = nfcal::Activation::kRelu;
  nfcal::Maf flow(config);
  std::mt19937_64 engine(1);
  std::uniform_real_distribution<float> uniform(-0.05f, 0.05f);
  for (const auto& made : flow.made_layers()) {
    const auto& out = flow.tensors()[made.out_weight];
    for (int r = 0; r < out.rows; ++r) {
      for (int c = 0; c < made.out_prefix[r % dim]; ++c) {
        flow.parameters()[out.offset + static_cast<std::size_t>(r) * out.cols + c] =
            uniform(engine);
      }
    }
  }
  return flow;
}

double multiply_adds_per_row(const nfcal::Maf& flow) {
  double total = 0;
  for (const auto& made : flow.made_layers()) {
    for (const auto& prefix : made.prefix) {
      for (int p : prefix) total += p;
    }
    for (int p : made.out_prefix) total += 2.0 * p;
  }
  return total;
}

/// Rows per run: 2^log2_rows, capped so the rows take at most 1 GiB.
std::size_t rows_for(int dim, int log2_rows) {
  const std::size_t cap = (std::size_t(1) << 28) / static_cast<std::size_t>(dim);
  return std::min(std::size_t(1) << log2_rows, cap);
}

/// Times `work` with CUDA events, one warm-up call first.
template <typename Work>
void time_on_device(benchmark::State& state, Work work) {
  cudaEvent_t begin = nullptr, end = nullptr;
  NFCAL_CUDA_CHECK(cudaEventCreate(&begin));
  NFCAL_CUDA_CHECK(cudaEventCreate(&end));
  work();
  NFCAL_CUDA_CHECK(cudaDeviceSynchronize());
  for (auto _ : state) {
    NFCAL_CUDA_CHECK(cudaEventRecord(begin, nullptr));
    work();
    NFCAL_CUDA_CHECK(cudaEventRecord(end, nullptr));
    NFCAL_CUDA_CHECK(cudaEventSynchronize(end));
    float ms = 0;
    NFCAL_CUDA_CHECK(cudaEventElapsedTime(&ms, begin, end));
    state.SetIterationTime(ms * 1e-3);
  }
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
}

bool skip_without_device(benchmark::State& state) {
  if (nfcal::cuda_device_count() > 0) return false;
  state.SkipWithError("no CUDA device");
  for (auto _ : state) {
  }
  return true;
}

void set_flow_counters(benchmark::State& state, const nfcal::Maf& flow, std::size_t rows,
                       double bytes_per_row) {
  const double n = static_cast<double>(state.iterations()) * static_cast<double>(rows);
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
  state.counters["flop_per_s"] =
      benchmark::Counter(2.0 * multiply_adds_per_row(flow) * n, benchmark::Counter::kIsRate);
  state.counters["bytes_per_s"] =
      benchmark::Counter(bytes_per_row * n, benchmark::Counter::kIsRate);
}

// Density rows/s; range(3) = 1 forces the general (cuBLAS) path.
void BM_CudaMafLogProb(benchmark::State& state) {
  if (skip_without_device(state)) return;
  const int dim = static_cast<int>(state.range(0));
  const nfcal::Maf flow = bench_flow(dim, static_cast<int>(state.range(1)));
  const std::size_t n = rows_for(dim, static_cast<int>(state.range(2)));
  nfcal::CudaMaf gpu(flow);
  if (state.range(3) == 1) gpu.set_density_path(nfcal::DensityPath::kGeneral);
  if (state.range(3) == 0 && gpu.density_path() != nfcal::DensityPath::kFused) {
    state.SkipWithError("the fused kernel does not fit this model");
    for (auto _ : state) {
    }
    return;
  }
  DeviceBuffer<float> x(n * dim), out(n);
  gpu.sample(n, 1, 0, x.data());
  time_on_device(state, [&] { gpu.log_prob(x.data(), n, out.data()); });
  set_flow_counters(state, flow, n, 4.0 * (dim + 1));
  state.counters["fused"] = gpu.density_path() == nfcal::DensityPath::kFused ? 1 : 0;
}

// Sampling rows/s; range(3) = 1 runs the naive D-pass kernel.
void BM_CudaMafSample(benchmark::State& state) {
  if (skip_without_device(state)) return;
  const int dim = static_cast<int>(state.range(0));
  const nfcal::Maf flow = bench_flow(dim, static_cast<int>(state.range(1)));
  const std::size_t n = rows_for(dim, static_cast<int>(state.range(2)));
  const nfcal::CudaMaf gpu(flow);
  DeviceBuffer<float> x(n * dim);
  std::uint64_t seed = 0;
  if (state.range(3) == 1) {
    time_on_device(state, [&] { gpu.sample_naive(n, seed++, 0, x.data()); });
  } else {
    time_on_device(state, [&] { gpu.sample(n, seed++, 0, x.data()); });
  }
  set_flow_counters(state, flow, n, 4.0 * dim);
}

// Training rows/s: one epoch of minibatches of 512 over device rows, each a forward and
// backward pass, the global-norm clip and the Adam step; range(2) = log2 rows.
void BM_CudaMafTrainEpoch(benchmark::State& state) {
  if (skip_without_device(state)) return;
  const int dim = static_cast<int>(state.range(0));
  const nfcal::Maf flow = bench_flow(dim, static_cast<int>(state.range(1)));
  const std::size_t n = rows_for(dim, static_cast<int>(state.range(2)));
  nfcal::TrainConfig config;
  config.batch_size = 512;
  nfcal::CudaTrainer trainer(flow, config);
  DeviceBuffer<float> rows(n * dim);
  nfcal::CudaMaf(flow).sample(n, 5, 0, rows.data());
  std::vector<std::uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  time_on_device(state, [&] { trainer.train_epoch(rows.data(), n, order); });
  // Forward plus two backward products: about three density passes of work per row.
  set_flow_counters(state, flow, n, 3.0 * 4.0 * (dim + 1));
  state.counters["flop_per_s"] = benchmark::Counter(
      3.0 * 2.0 * multiply_adds_per_row(flow) * static_cast<double>(n) * state.iterations(),
      benchmark::Counter::kIsRate);
}

/// The benchmark grid (D in {8, 64, 784}, hidden in {64, 256, 1024}) plus the target model of
/// the performance goals, D = 8 with hidden 128.
void flow_sizes(benchmark::internal::Benchmark* b, int max_log2_rows, int variant) {
  b->Args({8, 128, max_log2_rows, variant});
  for (int dim : {8, 64, 784}) {
    for (int hidden : {64, 256, 1024}) b->Args({dim, hidden, max_log2_rows, variant});
  }
}

/// A device booster of `trees` rounds (depth 6) trained on flow samples against shifted ones.
std::unique_ptr<nfcal::CudaBooster> bench_booster(const nfcal::CudaMaf& gpu, int trees) {
  const int dim = gpu.dim();
  const std::size_t n = 1 << 16;
  DeviceBuffer<float> x(2 * n * dim), labels(2 * n);
  gpu.sample(n, 2, 0, x.data());
  gpu.sample(n, 3, 0, x.data() + n * dim);
  std::vector<float> host(2 * n * dim), host_labels(2 * n, 0.0f);
  NFCAL_CUDA_CHECK(cudaMemcpy(host.data(), x.data(), host.size() * 4, cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < n; ++i) {
    host[i * dim] += 0.5f;  // the "data" half is shifted in its first column
    host_labels[i] = 1.0f;
  }
  NFCAL_CUDA_CHECK(cudaMemcpy(x.data(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
  NFCAL_CUDA_CHECK(cudaMemcpy(labels.data(), host_labels.data(), host_labels.size() * 4,
                              cudaMemcpyHostToDevice));
  return nfcal::CudaBooster::train(x.data(), labels.data(), 2 * n, dim,
                                   {"max_depth=6", "eta=0.1", "seed=0", "tree_method=hist"}, trees);
}

// XGBoost margin rows/s from device arrays; range(0) trees, range(1) log2 rows, D = 8.
void BM_CudaXGBoostMargins(benchmark::State& state) {
  if (skip_without_device(state)) return;
  const nfcal::CudaMaf gpu(bench_flow(8, 128));
  const auto booster = bench_booster(gpu, static_cast<int>(state.range(0)));
  const std::size_t n = std::size_t(1) << state.range(1);
  DeviceBuffer<float> x(n * 8), out(n);
  gpu.sample(n, 4, 0, x.data());
  time_on_device(state, [&] { booster->margins(x.data(), n, out.data(), nullptr); });
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.counters["bytes_per_s"] = benchmark::Counter(
      36.0 * static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}

// Accept kernel + compaction rows/s at acceptance 1/2 (margin 0 under ceiling log 2), D = 8.
void BM_CudaAcceptCompact(benchmark::State& state) {
  if (skip_without_device(state)) return;
  const int dim = 8;
  const std::size_t n = std::size_t(1) << state.range(0);
  DeviceBuffer<float> rows(n * dim), margins(n), out(n * dim);
  NFCAL_CUDA_CHECK(cudaMemset(rows.data(), 0, n * dim * 4));
  NFCAL_CUDA_CHECK(cudaMemset(margins.data(), 0, n * 4));
  nfcal::AcceptWorkspace workspace;
  const nfcal::AcceptParams params{1, 0.0f, static_cast<float>(std::log(2.0))};
  std::size_t accepted = 0;
  time_on_device(state, [&] {
    nfcal::launch_accept(margins.data(), n, 0, params, workspace, nullptr);
    nfcal::launch_gather(rows.data(), n, dim, workspace, 0, n, out.data(), nullptr);
    accepted = nfcal::read_count(workspace, nullptr);
  });
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  // Margins read, flags written and read, indices written and read, accepted rows copied.
  const double bytes =
      static_cast<double>(n) * (4 + 2) + static_cast<double>(accepted) * (2 * 4 + 2.0 * 4 * dim);
  state.counters["bytes_per_s"] =
      benchmark::Counter(bytes * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["acceptance"] = static_cast<double>(accepted) / static_cast<double>(n);
}

// Calibrated samples/s end to end: D = 8, hidden 128, 5 layers, 500 trees, ceiling log 2.
void BM_CudaCalibratedSampling(benchmark::State& state) {
  if (skip_without_device(state)) return;
  const nfcal::CudaMaf gpu(bench_flow(8, 128));
  const auto booster = bench_booster(gpu, 500);
  nfcal::CudaSamplerConfig config;
  config.ceiling = static_cast<float>(std::log(2.0));
  nfcal::CudaCalibratedSampler sampler(gpu, *booster, config);
  const std::size_t n = std::size_t(1) << state.range(0);
  DeviceBuffer<float> out(n * 8);

  nfcal::CudaSamplingStats total;
  time_on_device(state, [&] {
    sampler.sample(n, out.data(), nullptr);
    const nfcal::CudaSamplingStats& s = sampler.last_stats();
    total.candidates += s.candidates;
    total.accepted += s.accepted;
    total.flow_seconds += s.flow_seconds;
    total.margin_seconds += s.margin_seconds;
    total.accept_seconds += s.accept_seconds;
  });
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  const double stages = total.flow_seconds + total.margin_seconds + total.accept_seconds;
  state.counters["acceptance"] = total.acceptance_rate();
  state.counters["flow_share"] = total.flow_seconds / stages;
  state.counters["margin_share"] = total.margin_seconds / stages;
  state.counters["accept_share"] = total.accept_seconds / stages;
}

BENCHMARK(BM_CudaMafLogProb)
    ->Apply([](benchmark::internal::Benchmark* b) { flow_sizes(b, 24, 0); })
    ->Apply([](benchmark::internal::Benchmark* b) { flow_sizes(b, 22, 1); })
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CudaMafSample)
    ->Apply([](benchmark::internal::Benchmark* b) { flow_sizes(b, 24, 0); })
    ->Args({8, 64, 20, 1})
    ->Args({8, 256, 20, 1})
    ->Args({64, 256, 16, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CudaMafTrainEpoch)
    ->Apply([](benchmark::internal::Benchmark* b) { flow_sizes(b, 18, 0); })
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CudaXGBoostMargins)
    ->Args({100, 20})
    ->Args({2000, 20})
    ->Args({100, 24})
    ->Args({2000, 24})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CudaAcceptCompact)
    ->Arg(20)
    ->Arg(24)
    ->Arg(26)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CudaCalibratedSampling)
    ->Arg(20)
    ->Arg(23)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
