// GPU training against the CPU: the loss and gradient of a batch (with and without batch
// normalization), the zero gradient of masked weights, and one epoch of Adam steps compared
// with the same epoch taken by the CPU's objective and optimizer formulas.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/cuda.hpp"
#include "nfcal/train.hpp"

#include "cuda_check.cuh"
#include "gpu/gpu_test_util.hpp"

namespace nfcal {
namespace {

using gpu_test::random_dense_flow;
using gpu_test::random_rows;
using gpu_test::report_parity;

/// Largest |a - b| relative to the largest |b|: gradients span many magnitudes.
double error_scaled_to_max(const std::vector<float>& a, const std::vector<float>& b) {
  double largest = 0, worst = 0;
  for (float v : b) largest = std::max(largest, std::fabs(double(v)));
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  }
  return worst / std::max(largest, 1e-30);
}

class CudaTrainGradient : public ::testing::TestWithParam<bool> {};

TEST_P(CudaTrainGradient, LossAndGradientMatchTheCpu) {
  NFCAL_SKIP_WITHOUT_GPU();
  const bool batch_norm = GetParam();
  const Maf flow = random_dense_flow(6, 32, 2, batch_norm, 41);
  const Matrix<float> x = random_rows(300, 6, 42);

  std::vector<float> cpu_grad(flow.num_parameters());
  BatchStatistics cpu_stats;
  const double cpu_loss = flow.loss_and_gradient(x.data(), x.rows(), cpu_grad.data(), &cpu_stats);
  CudaTrainer trainer(flow, TrainConfig{});
  std::vector<float> gpu_grad;
  BatchStatistics gpu_stats;
  const double gpu_loss = trainer.loss_and_gradient(x, gpu_grad, &gpu_stats);

  EXPECT_NEAR(gpu_loss, cpu_loss, 1e-5 * (1.0 + std::fabs(cpu_loss)));
  const double error = error_scaled_to_max(gpu_grad, cpu_grad);
  report_parity(batch_norm ? "gradient_batch_norm" : "gradient", error);
  EXPECT_LT(error, 1e-4);
  ASSERT_EQ(gpu_stats.mean.size(), cpu_stats.mean.size());
  for (std::size_t l = 0; l < cpu_stats.mean.size(); ++l) {
    for (int d = 0; d < 6; ++d) {
      EXPECT_NEAR(gpu_stats.mean[l][d], cpu_stats.mean[l][d], 1e-5);
      EXPECT_NEAR(gpu_stats.var[l][d], cpu_stats.var[l][d], 1e-5 * (1 + cpu_stats.var[l][d]));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CudaBatchNorm, CudaTrainGradient, ::testing::Bool());

TEST(CudaTrain, MaskedWeightsGetExactlyZeroGradient) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(5, 16, 2, false, 43);
  CudaTrainer trainer(flow, TrainConfig{});
  std::vector<float> grad;
  trainer.loss_and_gradient(random_rows(64, 5, 44), grad);
  for (const MadeLayout& made : flow.made_layers()) {
    const TensorSpec& w = flow.tensors()[made.weights[0]];
    for (int r = 0; r < w.rows; ++r) {
      for (int c = made.prefix[0][r]; c < w.cols; ++c) {
        EXPECT_EQ(grad[w.offset + static_cast<std::size_t>(r) * w.cols + c], 0.0f);
      }
    }
  }
}

TEST(CudaTrain, OneEpochMatchesTheCpuOptimizerSteps) {
  NFCAL_SKIP_WITHOUT_GPU();
  Maf cpu = random_dense_flow(4, 16, 2, true, 45);
  const Matrix<float> train = random_rows(1000, 4, 46);
  TrainConfig config;
  config.batch_size = 128;
  config.learning_rate = 1e-3;
  config.clip_norm = 1.0;  // small, so clipping takes part
  std::vector<std::uint32_t> order(train.rows());
  std::iota(order.begin(), order.end(), 0u);
  std::reverse(order.begin(), order.end());

  // The CPU epoch, with fit()'s minibatches and optimizer formulas.
  const std::size_t count = cpu.num_parameters();
  std::vector<double> m(count, 0.0), v(count, 0.0);
  std::vector<float> grad(count);
  BatchStatistics stats;
  for (std::size_t first = 0, step = 1; first + 2 <= train.rows();
       first += config.batch_size, ++step) {
    const std::size_t rows = std::min<std::size_t>(config.batch_size, train.rows() - first);
    Matrix<float> x(rows, 4);
    for (std::size_t r = 0; r < rows; ++r) {
      std::copy(train.row(order[first + r]), train.row(order[first + r]) + 4, x.row(r));
    }
    cpu.loss_and_gradient(x.data(), rows, grad.data(), &stats);
    double norm_sq = 0;
    for (float g : grad) norm_sq += double(g) * g;
    const double clip =
        std::sqrt(norm_sq) > config.clip_norm ? config.clip_norm / std::sqrt(norm_sq) : 1.0;
    const double c1 = 1.0 - std::pow(0.9, double(step));
    const double c2 = 1.0 - std::pow(0.999, double(step));
    const double decay = 1.0 - config.learning_rate * config.weight_decay;
    for (std::size_t i = 0; i < count; ++i) {
      const double g = grad[i] * clip;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double update = config.learning_rate * (m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8);
      cpu.parameters()[i] = static_cast<float>(cpu.parameters()[i] * decay - update);
    }
    cpu.update_running_statistics(stats, config.batch_norm_momentum);
  }

  // The GPU epoch from the same start.
  Maf gpu = random_dense_flow(4, 16, 2, true, 45);
  CudaTrainer trainer(gpu, config);
  cuda_detail::DeviceBuffer<float> d_rows(train.size());
  NFCAL_CUDA_CHECK(cudaMemcpy(d_rows.data(), train.data(), train.size() * sizeof(float),
                              cudaMemcpyHostToDevice));
  const double loss = trainer.train_epoch(d_rows.data(), train.rows(), order);
  trainer.copy_to(gpu);

  EXPECT_TRUE(std::isfinite(loss));
  const double error = gpu_test::max_relative_error(gpu.parameters(), cpu.parameters(), count);
  report_parity("training_epoch_parameters", error);
  EXPECT_LT(error, 1e-4);
  const double buffers =
      gpu_test::max_relative_error(gpu.buffers(), cpu.buffers(), cpu.buffers().size());
  EXPECT_LT(buffers, 1e-4);
}

}  // namespace
}  // namespace nfcal

namespace nfcal {
namespace {

// fit() with a CUDA device: the same minibatches, clipping and Adam steps on the GPU, so the
// epochs' validation log-likelihoods follow the CPU's within float rounding for a few epochs.
TEST(CudaTrain, FitOnTheGpuFollowsTheCpuFit) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Matrix<float> train = gpu_test::random_rows(3000, 4, 52);
  TrainConfig config;
  config.epochs = 3;
  config.batch_size = 256;
  config.learning_rate = 5e-4;
  config.seed = 9;

  Maf on_cpu = gpu_test::random_dense_flow(4, 32, 2, false, 53);
  Maf on_gpu = on_cpu;
  const TrainResult cpu = fit(on_cpu, train, nullptr, config);
  config.device = Device::cuda(0);
  const TrainResult gpu = fit(on_gpu, train, nullptr, config);

  ASSERT_EQ(gpu.history.size(), cpu.history.size());
  double worst = 0;
  for (std::size_t e = 0; e < cpu.history.size(); ++e) {
    const double c = cpu.history[e].validation_log_likelihood;
    const double g = gpu.history[e].validation_log_likelihood;
    worst = std::max(worst, std::fabs(g - c) / (1.0 + std::fabs(c)));
    EXPECT_NEAR(gpu.history[e].train_log_likelihood, cpu.history[e].train_log_likelihood,
                gpu_test::tolerance(cpu.history[e].train_log_likelihood, 1e-3))
        << "epoch " << e + 1;
  }
  gpu_test::report_parity("fit_validation_log_likelihood", worst);
  EXPECT_LT(worst, 1e-3);
  EXPECT_EQ(gpu.best_epoch, cpu.best_epoch);
}

}  // namespace
}  // namespace nfcal
