// XGBoost on the device against XGBoost on the host: margins from device arrays, training from
// device arrays, and calibrated sampling with a real booster, all compared with the CPU
// predictor of the same trees.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/cuda.hpp"
#include "nfcal/error.hpp"

#include "common/accept.hpp"
#include "cuda_check.cuh"
#include "gpu/gpu_test_util.hpp"

namespace nfcal {
namespace {

using gpu_test::max_relative_error;
using gpu_test::report_parity;

/// XGBoost's own C API on the host; a failure ends the test with XGBoost's message.
void check(int status) {
  if (status != 0) throw XGBoostError(std::string("host XGBoost: ") + XGBGetLastError());
}

/// Two overlapping Gaussian classes in `dim` columns; the first n1 rows are label 1.
struct Labelled {
  Matrix<float> x;
  std::vector<float> labels;
};

Labelled two_classes(std::size_t n1, std::size_t n0, int dim, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Labelled data{Matrix<float>(n1 + n0, dim), std::vector<float>(n1 + n0, 0.0f)};
  for (std::size_t i = 0; i < n1 + n0; ++i) {
    const float shift = i < n1 ? 0.7f : 0.0f;
    for (int c = 0; c < dim; ++c) data.x(i, c) = normal(gen) + shift * (c % 2 ? -1.0f : 1.0f);
    data.labels[i] = i < n1 ? 1.0f : 0.0f;
  }
  return data;
}

/// A host booster trained on the CPU; returns its UBJSON bytes.
std::vector<char> train_on_host(const Labelled& data, int rounds) {
  DMatrixHandle matrix = nullptr;
  BoosterHandle booster = nullptr;
  std::vector<char> bytes;
  {
    check(XGDMatrixCreateFromMat(data.x.data(), data.x.rows(), data.x.cols(), NAN, &matrix));
    check(XGDMatrixSetFloatInfo(matrix, "label", data.labels.data(), data.labels.size()));
    check(XGBoosterCreate(&matrix, 1, &booster));
    check(XGBoosterSetParam(booster, "objective", "binary:logistic"));
    check(XGBoosterSetParam(booster, "max_depth", "4"));
    check(XGBoosterSetParam(booster, "seed", "1"));
    for (int r = 0; r < rounds; ++r) check(XGBoosterUpdateOneIter(booster, r, matrix));
    bst_ulong length = 0;
    const char* raw = nullptr;
    check(XGBoosterSaveModelToBuffer(booster, "{\"format\":\"ubj\"}", &length, &raw));
    bytes.assign(raw, raw + length);
  }
  XGBoosterFree(booster);
  XGDMatrixFree(matrix);
  return bytes;
}

/// Raw margins of x from the CPU predictor of a saved model.
std::vector<float> host_margins(const std::vector<char>& model, const Matrix<float>& x) {
  BoosterHandle booster = nullptr;
  std::vector<float> out;
  {
    check(XGBoosterCreate(nullptr, 0, &booster));
    check(XGBoosterLoadModelFromBuffer(booster, model.data(), model.size()));
    check(XGBoosterSetParam(booster, "device", "cpu"));
    DMatrixHandle matrix = nullptr;
    check(XGDMatrixCreateFromMat(x.data(), x.rows(), x.cols(), NAN, &matrix));
    bst_ulong length = 0;
    const float* result = nullptr;
    check(XGBoosterPredict(booster, matrix, 1, 0, 0, &length, &result));
    out.assign(result, result + length);
    XGDMatrixFree(matrix);
  }
  XGBoosterFree(booster);
  return out;
}

TEST(CudaXGBoost, DeviceMarginsMatchTheHostPredictorMinusTheBalance) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Labelled data = two_classes(3000, 2000, 6, 1);
  const std::vector<char> model = train_on_host(data, 50);
  const double balance = std::log(3000.0 / 2000.0);
  const CudaBooster booster(model, 6, balance);

  const Matrix<float> x = gpu_test::random_rows(20000, 6, 2);
  std::vector<float> expected = host_margins(model, x);
  for (float& m : expected) m = static_cast<float>(m - balance);
  const std::vector<float> out = booster.margins(x);
  const double error = max_relative_error(out, expected, expected.size());
  report_parity("xgboost_margins", error);
  EXPECT_LT(error, 1e-5);
}

TEST(CudaXGBoost, TrainingFromDeviceArraysGivesAWorkingModel) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Labelled data = two_classes(4000, 4000, 4, 3);
  cuda_detail::DeviceBuffer<float> d_x(data.x.size()), d_labels(data.labels.size());
  NFCAL_CUDA_CHECK(
      cudaMemcpy(d_x.data(), data.x.data(), data.x.size() * 4, cudaMemcpyHostToDevice));
  NFCAL_CUDA_CHECK(cudaMemcpy(d_labels.data(), data.labels.data(), data.labels.size() * 4,
                              cudaMemcpyHostToDevice));
  const auto booster = CudaBooster::train(d_x.data(), d_labels.data(), data.x.rows(), 4,
                                          {"max_depth=3", "eta=0.3", "seed=0"}, 30);
  EXPECT_NEAR(booster->balance(), 0.0, 1e-12);

  // Its device margins agree with the CPU predictor of its saved trees, and they separate
  // the classes: data rows score higher on average.
  const std::vector<float> gpu = booster->margins(data.x);
  const std::vector<float> cpu = host_margins(booster->save(), data.x);
  EXPECT_LT(max_relative_error(gpu, cpu, cpu.size()), 1e-5);
  double ones = 0, zeros = 0;
  for (std::size_t i = 0; i < gpu.size(); ++i) (i < 4000 ? ones : zeros) += gpu[i];
  EXPECT_GT(ones / 4000, zeros / 4000 + 0.5);
}

TEST(CudaXGBoost, BytesThatAreNotAModelThrowXGBoostError) {
  NFCAL_SKIP_WITHOUT_GPU();
  const std::vector<char> junk(100, 'x');
  EXPECT_THROW(CudaBooster(junk, 3, 0.0), XGBoostError);
}

// The first `count` candidates the CPU's accept rule keeps for these margins, seed and ceiling,
// in candidate order (fewer when the candidates run out).
Matrix<float> accepted_by_cpu_rule(const Matrix<float>& candidates,
                                   const std::vector<float>& margins, std::uint64_t seed,
                                   float ceiling, std::size_t count) {
  Matrix<float> kept(count, candidates.cols());
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < candidates.rows() && accepted < count; ++i) {
    const float clipped = calib::clipped_margin(margins[i], 0.0f, ceiling);
    if (!calib::accept_candidate(seed, i, clipped, ceiling)) continue;
    std::copy(candidates.row(i), candidates.row(i) + candidates.cols(), kept.row(accepted++));
  }
  return kept.slice_rows(0, accepted);
}

TEST(CudaXGBoost, CalibratedSamplingWithABoosterAcceptsTheCpuRowsForAFixedSeed) {
  NFCAL_SKIP_WITHOUT_GPU();
  // Any trained booster will do: one of two Gaussian classes scores the flow samples.
  const Labelled data = two_classes(2000, 2000, 4, 4);
  const std::vector<char> model = train_on_host(data, 20);
  const CudaMaf gpu(gpu_test::random_dense_flow(4, 16, 1, false, 31));
  const CudaBooster booster(model, 4, 0.0);
  CudaSamplerConfig config;
  config.ceiling = 1.0f;
  config.seed = 12;
  CudaCalibratedSampler sampler(gpu, booster, config);
  const Matrix<float> out = sampler.sample(2000);

  // The CPU rule with the host predictor's margins, on the GPU's candidates: a candidate one
  // rounding step away on the CPU could fall on the other side of a split (flow parity is
  // tested on its own).
  const std::size_t pool = sampler.last_stats().candidates;
  const Matrix<float> candidates = gpu.sample(pool, 12, 0);
  const Matrix<float> expected =
      accepted_by_cpu_rule(candidates, host_margins(model, candidates), 12, 1.0f, 2000);
  ASSERT_EQ(expected.rows(), 2000u);
  const double error = max_relative_error(out.data(), expected.data(), expected.size());
  report_parity("calibrated_rows_xgboost", error);
  EXPECT_LT(error, 1e-6);

  const LogZEstimate z = sampler.log_z(100000, 3);
  EXPECT_TRUE(std::isfinite(z.log_z));
  EXPECT_LE(z.log_z, 1.0 + 1e-6);  // the clipped margin never exceeds the ceiling
  EXPECT_GT(z.se, 0.0);
}

TEST(CudaXGBoost, LatentSamplingScoresEachCandidateWithItsOwnBaseNoise) {
  NFCAL_SKIP_WITHOUT_GPU();
  // A booster over [x, u] of a 3-D flow: 6 features.
  const Labelled data = two_classes(2000, 2000, 6, 5);
  const std::vector<char> model = train_on_host(data, 20);
  const CudaMaf gpu(gpu_test::random_dense_flow(3, 16, 1, false, 33));
  const CudaBooster booster(model, 6, 0.0);
  CudaSamplerConfig config;
  config.ceiling = 1.0f;
  config.seed = 14;
  config.latent_features = true;
  CudaCalibratedSampler sampler(gpu, booster, config);
  const Matrix<float> out = sampler.sample(1500);

  // The CPU rule on the same candidates, scored on their rows next to the keyed noise.
  const std::size_t pool = sampler.last_stats().candidates;
  const Matrix<float> candidates = gpu.sample(pool, 14, 0);
  const std::vector<float> margins = host_margins(
      model, classifier_features_of_samples(ClassifierInput::kDataAndLatent, candidates, 14, 0));
  const Matrix<float> expected = accepted_by_cpu_rule(candidates, margins, 14, 1.0f, 1500);
  ASSERT_EQ(expected.rows(), 1500u);
  const double error = max_relative_error(out.data(), expected.data(), expected.size());
  report_parity("calibrated_rows_xgboost_latent", error);
  EXPECT_LT(error, 1e-6);

  // A booster of the wrong width is refused before any work.
  const CudaBooster narrow(train_on_host(two_classes(500, 500, 3, 6), 5), 3, 0.0);
  EXPECT_THROW(CudaCalibratedSampler(gpu, narrow, config), InvalidArgument);
}

}  // namespace
}  // namespace nfcal
