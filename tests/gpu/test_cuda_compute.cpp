// The public entry points with a CUDA device (nfcal/compute.hpp, SamplerOptions::device)
// against the same calls on the CPU: densities, flow samples, calibrated densities and the
// calibrated sampler.
#include <cmath>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/compute.hpp"
#include "nfcal/rejection_sampler.hpp"

#include "calibration_fixtures.hpp"
#include "gpu/gpu_test_util.hpp"

namespace nfcal {

// Test names and failure messages print the classifier input by name.
void PrintTo(ClassifierInput input, std::ostream* out) { *out << to_string(input); }

namespace {

TEST(CudaCompute, FlowDensitiesAndSamplesMatchTheCpu) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = gpu_test::random_dense_flow(6, 32, 2, false, 41);
  const Matrix<float> x = gpu_test::random_rows(4000, 6, 3);

  const std::vector<float> gpu_lp = log_prob(flow, x, Device::cuda(0));
  const std::vector<float> cpu_lp = log_prob(flow, x, Device::cpu());
  const double density_error = gpu_test::max_relative_error(gpu_lp, cpu_lp, cpu_lp.size());
  gpu_test::report_parity("compute_flow_log_prob", density_error);
  EXPECT_LT(density_error, 2e-4);

  const Matrix<float> gpu_x = sample(flow, 3000, 8, Device::cuda(0), 100);
  const Matrix<float> cpu_x = sample(flow, 3000, 8, Device::cpu(), 100);
  const double sample_error =
      gpu_test::max_relative_error(gpu_x.data(), cpu_x.data(), cpu_x.size());
  gpu_test::report_parity("compute_flow_sample", sample_error);
  EXPECT_LT(sample_error, 2e-4);
}

// Both classifier inputs: the rows alone, and the rows with their base coordinates (which the
// GPU sampler writes from the candidates' keyed noise).
class CudaComputeInput : public ::testing::TestWithParam<ClassifierInput> {};

TEST_P(CudaComputeInput, CalibratedModelScoresAndSamplesLikeTheCpu) {
  NFCAL_SKIP_WITHOUT_GPU();
  const Maf flow = testing::broad_gaussian_flow(2, 2.0);
  const Matrix<float> data = testing::GaussianTarget{{1.0, -0.5}, {0.8, 1.2}, 2.0}.draws(4000, 9);
  CalibrationOptions options = testing::quick_calibration_options(CeilingChoice::fixed(1.0));
  options.classifier_input = GetParam();
  const CalibratedFlow model = calibrate(flow, data, options);

  // Densities: the same trees on both sides; a row one rounding step from a split may take
  // the other branch, so the comparison allows a few such rows.
  const Matrix<float> x = flow.sample(5000, 21);
  const std::vector<float> gpu_lp = log_prob(model, x, Device::cuda(0));
  const std::vector<float> cpu_lp = log_prob(model, x, Device::cpu());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    if (std::fabs(gpu_lp[i] - cpu_lp[i]) > gpu_test::tolerance(cpu_lp[i])) ++differing;
  }
  const std::string parity_name = "compute_calibrated_log_prob_rows_off_" + to_string(GetParam());
  gpu_test::report_parity(parity_name.c_str(),
                          static_cast<double>(differing) / static_cast<double>(x.rows()));
  EXPECT_LT(differing, x.rows() / 100);

  // Samples: exact draws at the predicted rate, with the data's moments.
  SamplerOptions sampler;
  sampler.seed = 5;
  sampler.device = Device::cuda(0);
  SamplerReport report;
  const Matrix<float> s = sample_calibrated(model, 20000, sampler, &report);
  ASSERT_EQ(s.rows(), 20000u);
  EXPECT_EQ(report.accepted >= 20000u, true);
  const double p = report.acceptance_predicted;
  const double rate_se = std::sqrt(p * (1 - p) / static_cast<double>(report.candidates));
  EXPECT_NEAR(report.acceptance_measured, p, 5 * rate_se + 0.01);
  const Matrix<float> cpu_s = sample_calibrated(model, 20000, {/*seed=*/5});
  for (int d = 0; d < 2; ++d) {
    double gpu_mean = 0, cpu_mean = 0;
    for (std::size_t i = 0; i < s.rows(); ++i) {
      gpu_mean += s(i, d);
      cpu_mean += cpu_s(i, d);
    }
    gpu_mean /= static_cast<double>(s.rows());
    cpu_mean /= static_cast<double>(s.rows());
    EXPECT_NEAR(gpu_mean, cpu_mean, 0.02) << "column " << d;
  }
}

INSTANTIATE_TEST_SUITE_P(BothInputs, CudaComputeInput,
                         ::testing::Values(ClassifierInput::kData, ClassifierInput::kDataAndLatent),
                         [](const ::testing::TestParamInfo<ClassifierInput>& param) {
                           return param.param == ClassifierInput::kData ? std::string("Data")
                                                                        : std::string("Latent");
                         });

}  // namespace
}  // namespace nfcal
