// Training tests: the flow learns densities whose true log-likelihood is known, improves on
// two moons, samples with the data's moments, and is reproducible across thread counts.

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/error.hpp"
#include "nfcal/train.hpp"

#include "maf_test_support.hpp"

namespace nfcal {
namespace {

using testing::CorrelatedGaussian;

double mean_of(const std::vector<float>& values) {
  double sum = 0;
  for (float v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

TEST(Training, CorrelatedGaussianReachesTheTrueLogLikelihood) {
  const CorrelatedGaussian truth(3, 17);
  const Matrix<float> train = truth.sample<float>(6000, 1);
  const Matrix<float> test = truth.sample<float>(4000, 2);

  MafConfig config;
  config.dim = 3;
  config.layers = 2;
  config.hidden = 32;
  config.activation = Activation::kTanh;
  Maf flow(config);
  TrainConfig training;
  training.epochs = 60;
  training.batch_size = 128;
  training.learning_rate = 3e-3;
  training.patience = 10;
  fit(flow, train, nullptr, training);

  // The bound is the true density's own average log-likelihood on the same test rows.
  double true_mean = 0;
  for (std::size_t r = 0; r < test.rows(); ++r) {
    const double row[3] = {test(r, 0), test(r, 1), test(r, 2)};
    true_mean += truth.log_prob(row);
  }
  true_mean /= static_cast<double>(test.rows());
  const double model_mean = mean_of(flow.log_prob(test));
  EXPECT_NEAR(model_mean, true_mean, 0.05);
}

TEST(Training, TwoMoonsLogLikelihoodImprovesSteadily) {
  const Matrix<float> train = testing::two_moons<float>(3000, 0.05, 1);
  const Matrix<float> valid = testing::two_moons<float>(1000, 0.05, 2);
  const Matrix<float> test = testing::two_moons<float>(2000, 0.05, 3);

  MafConfig config;
  config.dim = 2;
  config.layers = 5;
  config.hidden = 64;
  Maf flow(config);
  TrainConfig training;
  training.epochs = 40;
  training.batch_size = 128;
  training.learning_rate = 1e-3;
  training.patience = 40;

  std::vector<double> checkpoints;
  const TrainResult result = fit(flow, train, &valid, training, [&](const EpochReport& report) {
    if (report.epoch == 1 || report.epoch % 10 == 0) {
      checkpoints.push_back(report.validation_log_likelihood);
    }
  });
  ASSERT_EQ(checkpoints.size(), 5u);
  for (std::size_t i = 1; i < checkpoints.size(); ++i) {
    EXPECT_GT(checkpoints[i], checkpoints[i - 1] - 0.02) << "checkpoint " << i;
  }
  EXPECT_GT(checkpoints.back(), checkpoints.front() + 0.3);

  // A single Gaussian fitted to two moons scores about -1.9 nats; the flow must do far better.
  EXPECT_GT(mean_of(flow.log_prob(test)), -0.8);
  EXPECT_EQ(result.epochs_run, 40);
}

TEST(Training, SamplesMatchTheDataMeanAndCovariance) {
  const CorrelatedGaussian truth(3, 5);
  const Matrix<float> train = truth.sample<float>(6000, 3);
  MafConfig config;
  config.dim = 3;
  config.layers = 3;
  config.hidden = 32;
  config.batch_norm = true;
  Maf flow(config);
  TrainConfig training;
  training.epochs = 40;
  training.learning_rate = 3e-3;
  fit(flow, train, nullptr, training);

  const std::size_t n = 40000;
  const Matrix<float> samples = flow.sample(n, 12);
  const Matrix<float> reference = truth.sample<float>(n, 4);
  auto moments = [](const Matrix<float>& x, std::vector<double>& mean, std::vector<double>& cov) {
    const std::size_t d = x.cols();
    mean.assign(d, 0.0);
    cov.assign(d * d, 0.0);
    for (std::size_t r = 0; r < x.rows(); ++r) {
      for (std::size_t i = 0; i < d; ++i) mean[i] += x(r, i) / static_cast<double>(x.rows());
    }
    for (std::size_t r = 0; r < x.rows(); ++r) {
      for (std::size_t i = 0; i < d; ++i) {
        for (std::size_t j = 0; j < d; ++j) {
          cov[i * d + j] += (x(r, i) - mean[i]) * (x(r, j) - mean[j]) / (x.rows() - 1.0);
        }
      }
    }
  };
  std::vector<double> mean_s, cov_s, mean_r, cov_r;
  moments(samples, mean_s, cov_s);
  moments(reference, mean_r, cov_r);
  for (int i = 0; i < 3; ++i) {
    // Sampling error of the mean is sqrt(var / n) ~ 0.01; model error dominates the margin.
    const double sd = std::sqrt(cov_r[i * 3 + i]);
    EXPECT_NEAR(mean_s[i], mean_r[i], 0.05 * sd) << "mean " << i;
    for (int j = 0; j < 3; ++j) {
      const double scale = std::sqrt(cov_r[i * 3 + i] * cov_r[j * 3 + j]);
      EXPECT_NEAR(cov_s[i * 3 + j], cov_r[i * 3 + j], 0.08 * scale) << "cov " << i << j;
    }
  }
}

TEST(Training, ResultsAreIdenticalAcrossThreadCounts) {
  const Matrix<float> train = testing::two_moons<float>(1500, 0.1, 5);
  for (const bool batch_norm : {false, true}) {
    MafConfig config;
    config.hidden = 48;
    config.batch_norm = batch_norm;
    TrainConfig training;
    training.epochs = 3;
    training.batch_size = 512;  // several gradient chunks per batch without batch norm
    training.seed = 42;

    set_num_threads(1);
    Maf one(config);
    fit(one, train, nullptr, training);
    set_num_threads(2);
    Maf two(config);
    fit(two, train, nullptr, training);
    set_num_threads(0);

    EXPECT_EQ(one.parameters(), two.parameters()) << "batch_norm " << batch_norm;
    EXPECT_EQ(one.buffers(), two.buffers()) << "batch_norm " << batch_norm;
  }
}

TEST(Training, StandardizationTakesEachColumnsOwnUnitAndLeavesConstantColumnsAlone) {
  // Columns in units of 1e-30 and 1e20, and a constant one.
  const CorrelatedGaussian truth(2, 7);
  const Matrix<float> base = truth.sample<float>(2000, 8);
  Matrix<float> train(base.rows(), 3);
  for (std::size_t r = 0; r < base.rows(); ++r) {
    train(r, 0) = base(r, 0) * 1e-30f;
    train(r, 1) = base(r, 1) * 1e20f + 5e20f;
    train(r, 2) = 3.0f;
  }
  MafConfig config;
  config.dim = 3;
  config.layers = 2;
  config.hidden = 16;
  Maf flow(config);
  TrainConfig training;
  training.epochs = 30;
  training.learning_rate = 3e-3;
  fit(flow, train, nullptr, training);

  const Standardization& s = flow.standardization();
  auto column_sd = [](const Matrix<float>& x, int d) {
    const double n = static_cast<double>(x.rows());
    double mean = 0, square = 0;
    for (std::size_t r = 0; r < x.rows(); ++r) mean += x(r, d) / n;
    for (std::size_t r = 0; r < x.rows(); ++r) square += (x(r, d) - mean) * (x(r, d) - mean) / n;
    return std::sqrt(square);
  };
  // The statistics come from the training part of the rows (a tenth is held out).
  EXPECT_NEAR(s.scale[0] / column_sd(train, 0), 1.0, 0.05);
  EXPECT_NEAR(s.scale[1] / column_sd(train, 1), 1.0, 0.05);
  EXPECT_EQ(s.scale[2], 1.0);
  EXPECT_EQ(s.shift[2], 3.0);

  // Samples come out in each column's own unit.
  const Matrix<float> samples = flow.sample(5000, 3);
  for (int d = 0; d < 2; ++d) {
    const double ratio = column_sd(samples, d) / column_sd(train, d);
    EXPECT_GT(ratio, 0.5) << "column " << d;
    EXPECT_LT(ratio, 2.0) << "column " << d;
  }
}

TEST(Training, ScalingTheDataShiftsLogDensitiesByTheLogDeterminantOnly) {
  // The flow works in standardized units, so fitting c x instead of x gives the same flow in
  // those units and log densities lower by D log c, down to units of 1e-30.
  const CorrelatedGaussian truth(2, 11);
  const Matrix<float> unit = truth.sample<float>(1500, 12);
  const float c = 1e-30f;
  Matrix<float> scaled = unit;
  for (std::size_t i = 0; i < scaled.size(); ++i) scaled.data()[i] *= c;

  MafConfig config;
  config.dim = 2;
  config.layers = 2;
  config.hidden = 16;
  TrainConfig training;
  training.epochs = 5;
  Maf unit_flow(config), scaled_flow(config);
  fit(unit_flow, unit, nullptr, training);
  fit(scaled_flow, scaled, nullptr, training);

  const std::vector<float> unit_lp = unit_flow.log_prob(unit);
  const std::vector<float> scaled_lp = scaled_flow.log_prob(scaled);
  const double shift = -2.0 * std::log(static_cast<double>(c));
  for (std::size_t r = 0; r < unit.rows(); r += 50) {
    EXPECT_NEAR(scaled_lp[r] - unit_lp[r], shift, 1e-3) << "row " << r;
  }
}

TEST(Training, RejectsNonFiniteRowsNamingRowAndColumn) {
  Matrix<float> train = testing::two_moons<float>(100, 0.1, 1);
  train(37, 1) = std::nanf("");
  Maf flow(MafConfig{});
  try {
    fit(flow, train, nullptr, TrainConfig{});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("row 37"), std::string::npos) << message;
    EXPECT_NE(message.find("column 1"), std::string::npos) << message;
  }
}

TEST(Training, RejectsWrongColumnCountAndEmptyData) {
  Maf flow(MafConfig{});
  EXPECT_THROW(fit(flow, Matrix<float>(50, 3), nullptr, TrainConfig{}), DataError);
  EXPECT_THROW(fit(flow, Matrix<float>(0, 2), nullptr, TrainConfig{}), DataError);
  EXPECT_THROW(fit(flow, Matrix<float>(1, 2), nullptr, TrainConfig{}), DataError);
}

TEST(Training, KeepsTheBestValidationWeights) {
  const Matrix<float> train = testing::two_moons<float>(800, 0.05, 8);
  const Matrix<float> valid = testing::two_moons<float>(400, 0.05, 9);
  Maf flow(MafConfig{});
  TrainConfig training;
  training.epochs = 15;
  training.learning_rate = 1e-2;
  const TrainResult result = fit(flow, train, &valid, training);
  const std::vector<float> log_p = flow.log_prob(valid);
  EXPECT_NEAR(mean_of(log_p), result.best_validation_log_likelihood, 1e-4);
  double best = -1e30;
  for (const EpochReport& report : result.history) {
    best = std::max(best, report.validation_log_likelihood);
  }
  EXPECT_DOUBLE_EQ(best, result.best_validation_log_likelihood);
}

}  // namespace
}  // namespace nfcal
