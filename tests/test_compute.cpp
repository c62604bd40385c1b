// The device-dispatching entry points (nfcal/compute.hpp, SamplerOptions::device): on the CPU
// they return exactly what the CPU objects return, and a GPU that is not there, or a classifier
// that has no GPU implementation, is a clear error rather than a crash.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/compute.hpp"
#include "nfcal/error.hpp"
#include "nfcal/rejection_sampler.hpp"
#include "nfcal/train.hpp"

#include "calibration_fixtures.hpp"

namespace nfcal {
namespace {

using testing::broad_gaussian_flow;
using testing::GaussianTarget;

// A calibrated model with an XGBoost classifier, trained on draws from a Gaussian target.
CalibratedFlow small_xgboost_model(const Maf& flow) {
  const Matrix<float> data = GaussianTarget{{1.0, -0.5}, {0.8, 1.2}, 2.0}.draws(2000, 9);
  CalibrationOptions options;
  options.classifier.trees = 20;
  options.classifier.max_depth = 3;
  options.log_z_samples = 5000;
  options.ceiling = CeilingChoice::fixed(1.0);
  return calibrate(flow, data, options);
}

TEST(Compute, CpuDeviceGivesExactlyTheCpuObjectsResults) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const CalibratedFlow model = small_xgboost_model(flow);
  const Matrix<float> x = flow.sample(300, 4);

  EXPECT_EQ(log_prob(flow, x, Device::cpu()), flow.log_prob(x));
  EXPECT_EQ(sample(flow, 200, 5, Device::cpu(), 7).values(), flow.sample(200, 5, 7).values());
  EXPECT_EQ(log_prob(model, x, Device::cpu()), model.log_prob(x));
  EXPECT_EQ(AnyModel(model).log_prob(x, Device::cpu()), model.log_prob(x));

  SamplerOptions options;
  options.seed = 11;
  options.device = Device::cpu();
  EXPECT_EQ(AnyModel(model).sample(300, options).values(),
            sample_calibrated(model, 300, {/*seed=*/11}).values());
  EXPECT_EQ(AnyModel(flow).sample(300, options).values(), flow.sample(300, 11).values());
}

TEST(Compute, RowsOfTheWrongWidthAreADataErrorOnEveryDevice) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const Matrix<float> x(10, 3);
  for (const Device& device : {Device::cpu(), Device::cuda(0)}) {
    EXPECT_THROW(log_prob(flow, x, device), DataError) << device.to_string();
  }
}

TEST(Compute, AMissingGpuIsAnErrorNotACrash) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const CalibratedFlow model = small_xgboost_model(flow);
  const Matrix<float> x = flow.sample(10, 1);
  SamplerOptions options;
  options.device = Device::cuda(0);

  EXPECT_THROW(log_prob(flow, x, Device::cuda(0)), Error);
  EXPECT_THROW(sample(flow, 10, 1, Device::cuda(0)), Error);
  EXPECT_THROW(log_prob(model, x, Device::cuda(0)), Error);
  EXPECT_THROW(sample_calibrated(model, 10, options), Error);
}

TEST(Compute, TrainingOnAMissingGpuIsAClearErrorAndLeavesTheFlowUntouched) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  Maf flow = broad_gaussian_flow(2, 2.0);
  const std::vector<float> before = flow.parameters();
  const Matrix<float> x = flow.sample(200, 3);
  TrainConfig config;
  config.epochs = 1;
  config.device = Device::cuda(0);
  EXPECT_THROW(fit(flow, x, nullptr, config), Error);
  EXPECT_EQ(flow.parameters(), before);
}

TEST(Compute, TrainingADoubleFlowOnAGpuIsAnInvalidArgument) {
  MafConfig maf;
  maf.dim = 2;
  BasicMaf<double> flow(maf);
  Matrix<double> x(100, 2);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 0.01 * static_cast<double>(i % 17);
  TrainConfig config;
  config.epochs = 1;
  config.device = Device::cuda(0);
  EXPECT_THROW(fit(flow, x, nullptr, config), InvalidArgument);
}

TEST(Compute, AUserClassifierOnAGpuIsAnInvalidArgumentNamingTheCpu) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, 2.0};
  const CalibratedFlow model(flow, target.classifier(), 1.0, LogZEstimate{});
  SamplerOptions options;
  options.device = Device::cuda(0);
  try {
    sample_calibrated(model, 10, options);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("--device cpu"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfcal
