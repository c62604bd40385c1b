// Latent classifier input: rows scored next to their base coordinates u = f(x). The tests check
// that every path (density, margins, sampling, bundles) hands the classifier the true f(x),
// against the flow's own forward map and an exact known ratio written in u alone.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/error.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/rejection_sampler.hpp"

#include "calibration_fixtures.hpp"
#include "maf_test_support.hpp"

namespace nfcal {
namespace {

using testing::broad_gaussian_flow;
using testing::GaussianTarget;
constexpr double kInf = std::numeric_limits<double>::infinity();

// A 3-D flow far from the identity, with a standardization, so that u differs from x.
Maf curved_flow() {
  MafConfig config;
  config.dim = 3;
  config.layers = 3;
  config.hidden = 16;
  config.hidden_layers = 2;
  Maf flow(config);
  testing::randomize(flow, 5);
  Standardization s;
  s.shift = {0.5, -1.0, 0.0};
  s.scale = {2.0, 0.5, 1.5};
  flow.set_standardization(s);
  return flow;
}

// A classifier over [x, u] that mixes both halves, so a wrong u changes every margin.
std::shared_ptr<CallbackClassifier> mixing_classifier(int dim) {
  return std::make_shared<CallbackClassifier>(
      2 * dim, [](const float* rows, std::size_t n, int width, float* out) {
        const int d = width / 2;
        for (std::size_t i = 0; i < n; ++i) {
          const float* x = rows + i * width;
          double m = 0;
          for (int j = 0; j < d; ++j) m += 0.3 * std::sin(x[j]) - 0.2 * x[d + j] * x[d + j];
          out[i] = static_cast<float>(m);
        }
      });
}

// The exact log ratio of the Gaussian target to its broad flow N(0, s^2 I), read from the
// base coordinates alone: x = s u for that flow.
std::shared_ptr<CallbackClassifier> ratio_in_latent_coordinates(const GaussianTarget& target) {
  return std::make_shared<CallbackClassifier>(
      2 * static_cast<int>(target.mean.size()),
      [target](const float* rows, std::size_t n, int width, float* out) {
        const int d = width / 2;
        std::vector<float> x(static_cast<std::size_t>(d));
        for (std::size_t i = 0; i < n; ++i) {
          for (int j = 0; j < d; ++j) {
            x[j] = static_cast<float>(target.flow_scale * rows[i * width + d + j]);
          }
          out[i] = static_cast<float>(target.log_q(x.data()) - target.log_p(x.data()));
        }
      });
}

TEST(ClassifierInput, NamesRoundTripAndUnknownNamesAreRejected) {
  for (const ClassifierInput input : {ClassifierInput::kData, ClassifierInput::kDataAndLatent}) {
    EXPECT_EQ(parse_classifier_input(to_string(input)), input);
  }
  EXPECT_EQ(classifier_feature_count(ClassifierInput::kData, 5), 5);
  EXPECT_EQ(classifier_feature_count(ClassifierInput::kDataAndLatent, 5), 10);
  try {
    parse_classifier_input("latent");
    FAIL() << "an unknown classifier input was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'latent'"), std::string::npos) << e.what();
  }
}

TEST(ClassifierInput, LatentRowsOfFlowSamplesAreTheirBaseNoiseAndTheFlowsForwardMap) {
  const Maf flow = curved_flow();
  const std::uint64_t seed = 17, first = 1000;
  const Matrix<float> x = flow.sample(400, seed, first);

  const Matrix<float> rows =
      classifier_features_of_samples(ClassifierInput::kDataAndLatent, x, seed, first);

  // The second half is the noise the samples came from, bit for bit.
  const Matrix<float> noise = Maf::base_noise(400, 3, seed, first);
  Matrix<float> u(400, 3);
  std::vector<double> log_det(400);
  flow.forward(x.data(), 400, u.data(), log_det.data());
  ASSERT_EQ(rows.cols(), 6u);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (int d = 0; d < 3; ++d) {
      EXPECT_EQ(rows(i, d), x(i, d));
      EXPECT_EQ(rows(i, 3 + d), noise(i, d));
      EXPECT_NEAR(rows(i, 3 + d), u(i, d), 2e-3) << "row " << i << " column " << d;
    }
  }
  EXPECT_EQ(classifier_features_of_samples(ClassifierInput::kData, x, seed, first).values(),
            x.values());
}

TEST(ClassifierInput, LatentModelDensityIsTheFlowsPlusTheClippedMarginOfXAndFOfX) {
  const Maf flow = curved_flow();
  const auto clf = mixing_classifier(3);
  const double ceiling = 0.4;
  const LogZEstimate z =
      estimate_flow_log_z(flow, *clf, ceiling, 20000, 3, ClassifierInput::kDataAndLatent);
  const CalibratedFlow model(flow, clf, ceiling, z, 0, "{}", ClassifierInput::kDataAndLatent);
  const Matrix<float> x = testing::normal_rows<float>(300, 3, 8);

  // The reference: u from the flow's forward map, the classifier on [x, u], the flow's density.
  Matrix<float> u(300, 3);
  std::vector<double> log_det(300);
  flow.forward(x.data(), 300, u.data(), log_det.data());
  const std::vector<float> margins = clf->margins(
      classifier_features(ClassifierInput::kDataAndLatent, x.data(), u.data(), 300, 3));
  const std::vector<float> flow_density = flow.log_prob(x);

  const std::vector<float> density = model.log_prob(x);
  const std::vector<float> model_margins = model.margins(x);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    const double expected = flow_density[i] + std::min<double>(margins[i], ceiling) - z.log_z;
    EXPECT_NEAR(density[i], expected, 1e-4 * (1 + std::abs(expected))) << "row " << i;
    EXPECT_FLOAT_EQ(model_margins[i], margins[i]) << "row " << i;
  }
}

TEST(ClassifierInput, KnownRatioInLatentCoordinatesGivesTheTargetDensityAndDraws) {
  const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, 2.0};
  const Maf flow = broad_gaussian_flow(2, target.flow_scale);
  const auto clf = ratio_in_latent_coordinates(target);
  const LogZEstimate z =
      estimate_flow_log_z(flow, *clf, kInf, 200000, 4, ClassifierInput::kDataAndLatent);
  const CalibratedFlow model(flow, clf, kInf, z, target.max_log_ratio() + 0.01, "{}",
                             ClassifierInput::kDataAndLatent);

  // The density: the target's, up to the Monte Carlo error of log Z.
  EXPECT_NEAR(z.log_z, 0.0, 5 * z.se + 1e-3);
  const Matrix<float> x = testing::normal_rows<float>(200, 2, 6);
  const std::vector<float> density = model.log_prob(x);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    EXPECT_NEAR(density[i], target.log_q(x.row(i)), 5 * z.se + 1e-3) << "row " << i;
  }

  // The draws: the target's marginals, which they match only if each candidate's u is its own.
  SamplerOptions options;
  options.seed = 12;
  const Matrix<float> draws = sample_calibrated(model, 20000, options);
  for (int d = 0; d < 2; ++d) {
    const double distance = testing::ks_distance(
        draws, d, [&](double v) { return testing::normal_cdf(v, target.mean[d], target.sd[d]); });
    EXPECT_LT(distance, testing::ks_critical(draws.rows())) << "coordinate " << d;
  }
}

TEST(ClassifierInput, LatentSamplesDoNotDependOnTheBatchSize) {
  const Maf flow = curved_flow();
  const auto clf = mixing_classifier(3);
  const LogZEstimate z =
      estimate_flow_log_z(flow, *clf, 0.3, 5000, 3, ClassifierInput::kDataAndLatent);
  const CalibratedFlow model(flow, clf, 0.3, z, 0, "{}", ClassifierInput::kDataAndLatent);
  SamplerOptions options;
  options.seed = 31;
  const Matrix<float> automatic = sample_calibrated(model, 1500, options);

  for (const std::size_t batch : {1u, 113u, 4096u}) {
    options.batch_size = batch;
    EXPECT_EQ(sample_calibrated(model, 1500, options).values(), automatic.values())
        << "batch " << batch;
  }
}

TEST(ClassifierInput, ClassifierWidthMustMatchTheInput) {
  const Maf flow = broad_gaussian_flow(2, 1.0);
  EXPECT_THROW(CalibratedFlow(flow, mixing_classifier(2), 1.0, LogZEstimate{}, 0, "{}",
                              ClassifierInput::kData),
               InvalidArgument);
  EXPECT_THROW(CalibratedFlow(flow, testing::constant_classifier(2, 0.0f), 1.0, LogZEstimate{}, 0,
                              "{}", ClassifierInput::kDataAndLatent),
               InvalidArgument);
}

// A latent model calibrated by XGBoost, for the bundle tests.
class LatentBundle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, 2.0};
    const CalibrationOptions options =
        testing::quick_calibration_options(CeilingChoice::fixed(1.0));
    model = std::make_unique<CalibratedFlow>(
        calibrate(broad_gaussian_flow(2, 2.0), target.draws(3000, 9), options));
  }
  static void TearDownTestSuite() { model.reset(); }

  // The bundle with its header's classifier input replaced (or removed when empty).
  static ModelFile with_input(const std::string& input) {
    ModelFile file = model->encode();
    nlohmann::json header = nlohmann::json::parse(file.header_json);
    if (input.empty()) {
      header["classifier"].erase("input");
    } else {
      header["classifier"]["input"] = input;
    }
    file.header_json = header.dump();
    return decode_model_file(encode_model_file(file), "edited.nfcal");
  }

  static std::unique_ptr<CalibratedFlow> model;
};
std::unique_ptr<CalibratedFlow> LatentBundle::model;

TEST_F(LatentBundle, CalibrateUsesLatentInputByDefaultAndTheBundleKeepsIt) {
  ASSERT_EQ(model->classifier_input(), ClassifierInput::kDataAndLatent);
  EXPECT_EQ(model->classifier().num_features(), 4);
  EXPECT_NE(model->metadata_json().find("\"classifier_input\":\"data+latent\""), std::string::npos);

  const std::string path = ::testing::TempDir() + "nfcal_latent_bundle.nfcal";
  model->save(path);
  const CalibratedFlow back = CalibratedFlow::load(path);
  EXPECT_EQ(back.classifier_input(), ClassifierInput::kDataAndLatent);
  const Matrix<float> x = testing::normal_rows<float>(200, 2, 14);
  EXPECT_EQ(back.log_prob(x), model->log_prob(x));
  SamplerOptions options;
  options.seed = 5;
  EXPECT_EQ(sample_calibrated(back, 300, options).values(),
            sample_calibrated(*model, 300, options).values());
  std::remove(path.c_str());
}

TEST_F(LatentBundle, AnUnknownOrMismatchedInputInTheHeaderIsAModelFormatError) {
  try {
    CalibratedFlow::decode(with_input("pixels"));
    FAIL() << "an unknown classifier input was accepted";
  } catch (const ModelFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("classifier.input"), std::string::npos) << e.what();
  }

  // Without the field a bundle scores the data alone, which a 4-feature classifier cannot do.
  for (const std::string input : {"data", ""}) {
    try {
      CalibratedFlow::decode(with_input(input));
      FAIL() << "a 4-feature classifier was accepted for data input on a 2-D flow";
    } catch (const ModelFormatError& e) {
      EXPECT_NE(std::string(e.what()).find("4 features"), std::string::npos) << e.what();
    }
  }
}

TEST(ClassifierInputBundle, ABundleWithoutTheFieldLoadsAsDataInput) {
  // A model on the rows alone, its header stripped of the input as files written before
  // latent input existed: it loads, scores the data alone, and gives the same densities.
  const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, 2.0};
  CalibrationOptions options = testing::quick_calibration_options(CeilingChoice::fixed(1.0));
  options.classifier_input = ClassifierInput::kData;
  const CalibratedFlow model =
      calibrate(broad_gaussian_flow(2, 2.0), target.draws(2000, 3), options);
  ModelFile file = model.encode();
  nlohmann::json header = nlohmann::json::parse(file.header_json);
  ASSERT_EQ(header["classifier"]["input"], "data");
  header["classifier"].erase("input");
  file.header_json = header.dump();

  const CalibratedFlow back =
      CalibratedFlow::decode(decode_model_file(encode_model_file(file), "old.nfcal"));

  EXPECT_EQ(back.classifier_input(), ClassifierInput::kData);
  const Matrix<float> x = testing::normal_rows<float>(100, 2, 15);
  EXPECT_EQ(back.log_prob(x), model.log_prob(x));
}

}  // namespace
}  // namespace nfcal
