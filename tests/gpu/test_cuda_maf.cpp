// GPU MAF against the CPU MAF: densities on both paths, samples from the same keyed noise,
// the naive sampling kernel, chunking, empty inputs, and the error reporting of the backend.
// Every test that needs a device skips with "no CUDA device" where there is none.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/cuda.hpp"
#include "nfcal/error.hpp"

#include "cuda_check.cuh"
#include "gpu/gpu_test_util.hpp"

namespace nfcal {
namespace {

using gpu_test::max_relative_error;
using gpu_test::random_dense_flow;
using gpu_test::random_rows;
using gpu_test::report_parity;

constexpr double kDensityTolerance = 2e-4;
constexpr double kSampleTolerance = 5e-4;

TEST(CudaErrors, FailedRuntimeCallThrowsCudaErrorWithFileLineAndExpression) {
  // Runs without a GPU too: an invalid device ordinal fails in the runtime either way.
  try {
    NFCAL_CUDA_CHECK(cudaSetDevice(-1));
    FAIL() << "cudaSetDevice(-1) succeeded";
  } catch (const CudaError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("test_cuda_maf.cpp:"), std::string::npos) << message;
    EXPECT_NE(message.find("cudaSetDevice(-1)"), std::string::npos) << message;
  }
  // With a working driver the error is not left behind for the next call to report; without
  // one, every runtime call keeps failing with the initialization error.
  if (cuda_device_count() > 0) {
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the error was not cleared";
  }
}

TEST(CudaErrors, ImpossibleAllocationNamesTheSizeAskedFor) {
  NFCAL_SKIP_WITHOUT_GPU();
  try {
    cuda_detail::DeviceBuffer<float> huge(std::size_t(1) << 46, "test buffer");
    FAIL() << "a 256 TiB allocation succeeded";
  } catch (const CudaError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("out of device memory"), std::string::npos) << message;
    EXPECT_NE(message.find("test buffer asked for 268435456.0 MiB"), std::string::npos) << message;
  }
}

TEST(CudaMafDensity, FusedKernelMatchesTheCpuMaf) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(8, 64, 2, true, 1);
  CudaMaf gpu(flow);
  ASSERT_EQ(gpu.density_path(), DensityPath::kFused);
  const Matrix<float> x = random_rows(10000, 8, 2);

  const std::vector<float> cpu = flow.log_prob(x);
  const std::vector<float> out = gpu.log_prob(x);
  const double error = max_relative_error(out, cpu, cpu.size());
  report_parity("density_fused", error);
  EXPECT_LT(error, kDensityTolerance);
}

TEST(CudaMafDensity, GeneralPathMatchesTheCpuMaf) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(8, 64, 2, true, 3);
  CudaMaf gpu(flow);
  gpu.set_density_path(DensityPath::kGeneral);
  const Matrix<float> x = random_rows(5000, 8, 4);

  const std::vector<float> cpu = flow.log_prob(x);
  const std::vector<float> out = gpu.log_prob(x);
  const double error = max_relative_error(out, cpu, cpu.size());
  report_parity("density_general", error);
  EXPECT_LT(error, kDensityTolerance);
}

TEST(CudaMafDensity, LargeModelChoosesTheGeneralPathAndMatches) {
  NFCAL_SKIP_WITHOUT_GPU();
  // 64 inputs and 512 hidden units per layer: 1 MB of weights per MADE, no fused kernel.
  const Maf flow = random_dense_flow(64, 512, 2, false, 5, 2, Activation::kTanh);
  CudaMaf gpu(flow);
  EXPECT_EQ(gpu.density_path(), DensityPath::kGeneral);
  EXPECT_THROW(gpu.set_density_path(DensityPath::kFused), InvalidArgument);
  const Matrix<float> x = random_rows(500, 64, 6);

  const std::vector<float> cpu = flow.log_prob(x);
  const std::vector<float> out = gpu.log_prob(x);
  const double error = max_relative_error(out, cpu, cpu.size());
  report_parity("density_general_large", error);
  EXPECT_LT(error, kDensityTolerance);
}

TEST(CudaMafDensity, OddShapesAndEveryActivationMatch) {
  NFCAL_SKIP_WITHOUT_GPU();
  for (const Activation a : {Activation::kRelu, Activation::kTanh, Activation::kElu}) {
    const Maf flow = random_dense_flow(5, 7, 3, true, 7, 4, a);
    CudaMaf gpu(flow);
    const Matrix<float> x = random_rows(333, 5, 8);
    const std::vector<float> cpu = flow.log_prob(x);
    for (const DensityPath path : {DensityPath::kFused, DensityPath::kGeneral}) {
      gpu.set_density_path(path);
      const std::vector<float> out = gpu.log_prob(x);
      EXPECT_LT(max_relative_error(out, cpu, cpu.size()), kDensityTolerance)
          << to_string(a) << (path == DensityPath::kFused ? " fused" : " general");
    }
  }
}

TEST(CudaMafDensity, EmptyInputGivesEmptyOutput) {
  NFCAL_SKIP_WITHOUT_GPU();
  const CudaMaf gpu(random_dense_flow(3, 8, 1, false, 1));
  EXPECT_TRUE(gpu.log_prob(Matrix<float>(0, 3)).empty());
  EXPECT_THROW(gpu.log_prob(Matrix<float>(2, 4)), DataError);
}

TEST(CudaMafSampling, SamplesMatchTheCpuMafFromTheSameKeyedNoise) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(8, 64, 2, true, 9);
  const CudaMaf gpu(flow);
  const Matrix<float> cpu = flow.sample(4000, 123, 500);
  const Matrix<float> out = gpu.sample(4000, 123, 500);
  const double error = max_relative_error(out.data(), cpu.data(), cpu.size());
  report_parity("sampling", error);
  EXPECT_LT(error, kSampleTolerance);
}

TEST(CudaMafSampling, NaiveKernelGivesTheSameRows) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(6, 32, 2, false, 10);
  const CudaMaf gpu(flow);
  const std::size_t n = 2000;
  cuda_detail::DeviceBuffer<float> a(n * 6), b(n * 6);
  gpu.sample(n, 4, 0, a.data());
  gpu.sample_naive(n, 4, 0, b.data());
  std::vector<float> ha(n * 6), hb(n * 6);
  NFCAL_CUDA_CHECK(cudaMemcpy(ha.data(), a.data(), n * 6 * 4, cudaMemcpyDeviceToHost));
  NFCAL_CUDA_CHECK(cudaMemcpy(hb.data(), b.data(), n * 6 * 4, cudaMemcpyDeviceToHost));
  const double error = max_relative_error(ha, hb, ha.size());
  report_parity("sampling_naive_vs_ordered", error);
  EXPECT_LT(error, 1e-5);
}

TEST(CudaMafSampling, LargeModelSamplesThroughGlobalScratchAndMatches) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(64, 512, 2, false, 11, 2, Activation::kTanh);
  const CudaMaf gpu(flow);
  const Matrix<float> cpu = flow.sample(300, 5, 0);
  const Matrix<float> out = gpu.sample(300, 5, 0);
  const double error = max_relative_error(out.data(), cpu.data(), cpu.size());
  report_parity("sampling_large", error);
  EXPECT_LT(error, kSampleTolerance);
}

TEST(CudaMafSampling, SplittingARequestDoesNotChangeTheRows) {
  NFCAL_SKIP_WITHOUT_GPU();
  const CudaMaf gpu(random_dense_flow(4, 16, 1, false, 12));
  const Matrix<float> whole = gpu.sample(1000, 77, 0);
  const Matrix<float> tail = gpu.sample(400, 77, 600);
  for (std::size_t i = 0; i < tail.size(); ++i) {
    EXPECT_EQ(tail.data()[i], whole.data()[600 * 4 + i]);
  }
}

TEST(CudaMafSampling, DensityOfGpuSamplesMatchesTheCpu) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = random_dense_flow(8, 64, 2, true, 13);
  const CudaMaf gpu(flow);
  const Matrix<float> x = gpu.sample(3000, 1, 0);
  const std::vector<float> cpu = flow.log_prob(x);
  const std::vector<float> out = gpu.log_prob(x);
  EXPECT_LT(max_relative_error(out, cpu, cpu.size()), kDensityTolerance);
}

TEST(CudaMafDevice, MissingDeviceIsAnInvalidArgument) {
  // Runs without a GPU too: asking for a device that is not there is refused up front.
  const Maf flow = random_dense_flow(2, 4, 1, false, 1);
  EXPECT_THROW(CudaMaf(flow, cuda_device_count() + 3), InvalidArgument);
}

}  // namespace
}  // namespace nfcal
