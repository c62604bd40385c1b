// The calibrated density against exact references (zero, constant and known log ratios), the
// ceiling choices, the bundle file and its validation, and calibrate() with XGBoost on 2-D data.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nfcal/atomic_file.hpp"
#include "nfcal/calibrated_flow.hpp"
#include "nfcal/error.hpp"
#include "nfcal/evaluate.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/train.hpp"

#include "calibration_fixtures.hpp"

namespace nfcal {
namespace {

using testing::broad_gaussian_flow;
using testing::constant_classifier;
using testing::GaussianTarget;
using testing::quick_calibration_options;
using Json = nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

Matrix<float> uniform_rows(std::size_t n, int dim, float half_width, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> u(-half_width, half_width);
  Matrix<float> x(n, dim);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = u(gen);
  return x;
}

// Rows of two well separated blobs at (+-3, 0) with sd 0.5.
Matrix<float> blob_rows(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  Matrix<float> x(n, 2);
  for (std::size_t i = 0; i < n; ++i) {
    x(i, 0) = (i % 2 == 0 ? -3.0f : 3.0f) + normal(gen);
    x(i, 1) = normal(gen);
  }
  return x;
}

// Rows of two interleaved half circles with noise 0.1.
Matrix<float> moon_rows(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> angle(0.0f, 3.14159265f);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  Matrix<float> x(n, 2);
  for (std::size_t i = 0; i < n; ++i) {
    const float t = angle(gen);
    const bool upper = i % 2 == 0;
    x(i, 0) = (upper ? std::cos(t) : 1.0f - std::cos(t)) + noise(gen);
    x(i, 1) = (upper ? std::sin(t) : 0.5f - std::sin(t)) + noise(gen);
  }
  return x;
}

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (const float x : v) s += x;
  return s / static_cast<double>(v.size());
}

TEST(CalibratedFlow, ZeroMarginLeavesTheFlowUnchangedWithLogZZero) {
  const Maf flow = broad_gaussian_flow(2, 1.5);
  const auto clf = constant_classifier(2, 0.0f);
  const LogZEstimate z = estimate_flow_log_z(flow, *clf, kInf, 5000, 1);
  const CalibratedFlow model(flow, clf, 0.0, z);
  const Matrix<float> x = uniform_rows(100, 2, 4.0f, 2);

  EXPECT_DOUBLE_EQ(model.log_z(), 0.0);
  EXPECT_EQ(model.log_prob(x), flow.log_prob(x));
  EXPECT_DOUBLE_EQ(model.acceptance_predicted(), 1.0);
}

TEST(CalibratedFlow, ConstantMarginGivesLogZEqualToItAndAnUnchangedDensity) {
  const Maf flow = broad_gaussian_flow(2, 1.5);
  const auto clf = constant_classifier(2, 1.25f);
  const Matrix<float> x = uniform_rows(100, 2, 4.0f, 3);
  const std::vector<float> reference = flow.log_prob(x);

  // Above, at and below the constant: the clipped margin is constant in every case.
  for (const double ceiling : {kInf, 2.0, 0.5}) {
    const LogZEstimate z = estimate_flow_log_z(flow, *clf, ceiling, 2000, 4);
    const CalibratedFlow model(flow, clf, ceiling, z, 2.0);
    EXPECT_NEAR(model.log_z(), std::min(1.25, ceiling), 1e-6) << ceiling;
    const std::vector<float> lp = model.log_prob(x);
    for (std::size_t i = 0; i < lp.size(); ++i) EXPECT_NEAR(lp[i], reference[i], 1e-5);
  }
}

TEST(CalibratedFlow, KnownRatioRecoversTheTargetDensityWithinLogZError) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, 2.0};
  const auto clf = target.classifier();
  const LogZEstimate z = estimate_flow_log_z(flow, *clf, kInf, 100000, 5);
  const CalibratedFlow model(flow, clf, kInf, z, target.max_log_ratio() + 0.1);

  // Z is exactly 1 for an exact ratio: the estimate must agree within its error.
  EXPECT_LT(std::abs(model.log_z()), 4 * model.log_z_se() + 1e-3);
  const Matrix<float> x = uniform_rows(200, 2, 3.0f, 6);
  const std::vector<float> lp = model.log_prob(x);
  for (std::size_t i = 0; i < lp.size(); ++i) {
    EXPECT_NEAR(lp[i], target.log_q(x.row(i)), 4 * model.log_z_se() + 1e-3) << "row " << i;
  }
  EXPECT_GT(model.ess(), 1000.0);
  EXPECT_LT(model.ess(), 100000.0);
}

// Test rows of the Gaussian target with their true log densities, for evaluate().
struct KnownTruth {
  Matrix<float> rows;
  std::vector<double> log_density;
};

KnownTruth known_truth(const GaussianTarget& target, std::size_t n, std::uint64_t seed) {
  KnownTruth t{target.draws(n, seed), {}};
  for (std::size_t i = 0; i < n; ++i) t.log_density.push_back(target.log_q(t.rows.row(i)));
  return t;
}

TEST(Evaluate, AKnownTruthGivesTheShareOfTheGapClosed) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, 2.0};
  const KnownTruth test = known_truth(target, 4000, 40);
  EvaluateOptions options;
  options.acceptance_samples = 0;
  options.true_log_density = test.log_density;

  // The exact ratio closes the whole gap, up to the error of its log Z.
  const auto exact_ratio = target.classifier();
  const CalibratedFlow exact(flow, exact_ratio, kInf,
                             estimate_flow_log_z(flow, *exact_ratio, kInf, 100000, 41),
                             target.max_log_ratio() + 0.1);
  const Evaluation e = evaluate(AnyModel(exact), test.rows, options);
  const double gap = e.true_log_likelihood - e.flow_log_likelihood;
  EXPECT_TRUE(e.truth_known);
  EXPECT_NEAR(e.true_log_likelihood,
              std::accumulate(test.log_density.begin(), test.log_density.end(), 0.0) / 4000, 1e-12);
  EXPECT_GT(gap, 0.1);
  EXPECT_NEAR(e.gap_closed, 1.0, (4 * exact.log_z_se() + 1e-4) / gap) << e.to_table();
  EXPECT_NEAR(e.gain, e.calibrated_log_likelihood - e.flow_log_likelihood, 1e-9);
  EXPECT_NE(e.to_table().find("share of the gap closed"), std::string::npos);
  EXPECT_NE(e.to_json().find("\"gap_closed\""), std::string::npos);

  // A margin of zero leaves the flow as it is: nothing closed, with no sampling error.
  const auto zero = constant_classifier(2, 0.0f);
  const CalibratedFlow unchanged(flow, zero, 1.0, estimate_flow_log_z(flow, *zero, 1.0, 1000, 42));
  const Evaluation none = evaluate(AnyModel(unchanged), test.rows, options);
  EXPECT_DOUBLE_EQ(none.gap_closed, 0.0);
  EXPECT_DOUBLE_EQ(none.gap_closed_se, 0.0);
  EXPECT_DOUBLE_EQ(none.gain, 0.0);

  // A plain flow has a truth to compare with but no calibration to close the gap.
  const Evaluation plain = evaluate(AnyModel(flow), test.rows, options);
  EXPECT_DOUBLE_EQ(plain.true_log_likelihood, e.true_log_likelihood);
  EXPECT_TRUE(std::isnan(plain.gap_closed));
  EXPECT_NE(plain.to_json().find("\"gap_closed\": null"), std::string::npos);

  // Without a truth the JSON keeps exactly its documented keys.
  options.true_log_density.clear();
  const Evaluation unknown = evaluate(AnyModel(exact), test.rows, options);
  EXPECT_FALSE(unknown.truth_known);
  EXPECT_EQ(unknown.to_json().find("gap_closed"), std::string::npos);
  EXPECT_EQ(unknown.to_json().find("true_log_likelihood"), std::string::npos);
}

TEST(Evaluate, ATruthOfTheWrongLengthOrNotFiniteIsADataErrorNamingTheRow) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const Matrix<float> test = uniform_rows(4, 2, 1.0f, 43);
  EvaluateOptions options;
  options.acceptance_samples = 0;
  auto message = [&](const std::vector<double>& truth) {
    options.true_log_density = truth;
    try {
      evaluate(AnyModel(flow), test, options);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };

  EXPECT_NE(message({-1.0, -1.0, -1.0}).find("3 values for 4 test rows"), std::string::npos);
  EXPECT_NE(message({-1.0, -1.0, std::nan(""), -1.0}).find("row 2"), std::string::npos);
  EXPECT_NE(message({-1.0, -kInf, -1.0, -1.0}).find("row 1"), std::string::npos);
}

TEST(Evaluate, AreaUnderCurveMatchesCountingPairs) {
  // The reference: the share of (positive, negative) pairs ordered right, ties counted half.
  auto by_pairs = [](const std::vector<float>& pos, const std::vector<float>& neg) {
    double right = 0;
    for (const float p : pos) {
      for (const float n : neg) right += p > n ? 1.0 : p == n ? 0.5 : 0.0;
    }
    return right / static_cast<double>(pos.size() * neg.size());
  };
  std::mt19937_64 gen(44);
  std::uniform_int_distribution<int> level(0, 6);  // few values, so ties are common
  std::vector<float> pos(150), neg(230);
  for (float& v : pos) v = 0.5f * static_cast<float>(level(gen)) + 0.5f;
  for (float& v : neg) v = 0.5f * static_cast<float>(level(gen));

  EXPECT_NEAR(area_under_curve(pos, neg), by_pairs(pos, neg), 1e-12);
  EXPECT_DOUBLE_EQ(area_under_curve({2, 3}, {0, 1, 1.5f}), 1.0);
  EXPECT_DOUBLE_EQ(area_under_curve({0, 1}, {2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(area_under_curve({1, 1, 1}, {1, 1}), 0.5);
  EXPECT_THROW(area_under_curve({}, {1}), InvalidArgument);
}

TEST(Evaluate, AConstantMarginGivesChanceAucAndItsClosedFormLogLoss) {
  // Every row scores c: AUC 1/2, and log-loss (log(1 + e^-c) + log(1 + e^c)) / 2 over the
  // balanced test rows and flow samples.
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const float c = 0.7f;
  const auto constant = constant_classifier(2, c);
  const CalibratedFlow model(flow, constant, 2.0,
                             estimate_flow_log_z(flow, *constant, 2.0, 1000, 45));
  EvaluateOptions options;
  options.acceptance_samples = 0;

  const Evaluation e = evaluate(AnyModel(model), uniform_rows(500, 2, 3.0f, 46), options);

  EXPECT_DOUBLE_EQ(e.auc, 0.5);
  const double cd = static_cast<double>(c);
  EXPECT_NEAR(e.log_loss, 0.5 * (std::log1p(std::exp(-cd)) + std::log1p(std::exp(cd))), 1e-9);
}

TEST(CalibratedFlow, CeilingForAcceptanceSolvesZOverExpLEqualsTheRate) {
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> m(20000);
  for (float& v : m) v = normal(gen);

  for (const double rate : {0.9, 0.5, 0.1, 0.001}) {
    const double ceiling = ceiling_for_acceptance(m, rate);
    const LogZEstimate z = estimate_log_z(m.data(), m.size(), ceiling);
    EXPECT_NEAR(std::exp(z.log_z - ceiling), rate, 1e-6 * rate + 1e-9) << rate;
  }
  // Zero margins accept exp(-L) of candidates.
  EXPECT_NEAR(ceiling_for_acceptance(std::vector<float>(100, 0.0f), 0.25), std::log(4.0), 1e-9);
  EXPECT_THROW(ceiling_for_acceptance(m, 0.0), InvalidArgument);
}

TEST(CalibratedFlow, CeilingChoiceParsesNumbersAutoAndNone) {
  EXPECT_EQ(CeilingChoice::parse("auto").mode, CeilingChoice::Mode::kAuto);
  EXPECT_EQ(CeilingChoice::parse("none").mode, CeilingChoice::Mode::kNone);
  const CeilingChoice fixed = CeilingChoice::parse("0.405");
  EXPECT_EQ(fixed.mode, CeilingChoice::Mode::kValue);
  EXPECT_DOUBLE_EQ(fixed.value, 0.405);
  EXPECT_THROW(CeilingChoice::parse("high"), InvalidArgument);
  EXPECT_THROW(CeilingChoice::parse("1.5x"), InvalidArgument);
}

TEST(CalibratedFlow, MismatchedClassifierDimensionIsRejected) {
  EXPECT_THROW(CalibratedFlow(broad_gaussian_flow(2, 1.0), constant_classifier(3, 0.0f), 1.0,
                              LogZEstimate{}),
               InvalidArgument);
}

TEST(CalibratedFlow, NaNMarginsFromAUserClassifierAreADataError) {
  const auto clf =
      std::make_shared<CallbackClassifier>(2, [](const float* x, std::size_t n, int, float* out) {
        for (std::size_t i = 0; i < n; ++i) out[i] = x[2 * i] > 1.0f ? std::nanf("") : 0.0f;
      });
  const CalibratedFlow model(broad_gaussian_flow(2, 1.0), clf, 1.0, LogZEstimate{});
  Matrix<float> x(3, 2);
  x(2, 0) = 2.0f;

  try {
    model.log_prob(x);
    FAIL() << "NaN margin accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sample_calibrated(model, 1000), DataError);
}

// A classifier written against the interface directly, with no checks of its own.
class NaNAboveOneClassifier : public Classifier {
 public:
  int num_features() const override { return 2; }
  void margins(const float* x, std::size_t n, float* out) const override {
    for (std::size_t i = 0; i < n; ++i) out[i] = x[2 * i] > 1.0f ? std::nanf("") : 0.5f;
  }
  using Classifier::margins;
  std::string name() const override { return "nan-above-one"; }
};

TEST(CalibratedFlow, NaNMarginsFromAnyClassifierSubclassAreADataError) {
  const CalibratedFlow model(broad_gaussian_flow(2, 1.0), std::make_shared<NaNAboveOneClassifier>(),
                             1.0, LogZEstimate{});
  Matrix<float> x(4, 2);
  x(3, 0) = 2.0f;

  for (const auto& call : {std::function<void()>([&] { model.log_prob(x); }),
                           std::function<void()>([&] { model.margins(x); })}) {
    try {
      call();
      FAIL() << "NaN margin accepted";
    } catch (const DataError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("row 3"), std::string::npos) << what;
      EXPECT_NE(what.find("nan-above-one"), std::string::npos) << what;
    }
  }
  // One in six of the flow's samples exceeds 1 in its first column: sampling must not
  // silently reject them.
  EXPECT_THROW(sample_calibrated(model, 1000), DataError);
}

TEST(CalibratedFlow, CallbackClassifierCannotBeSaved) {
  const CalibratedFlow model(broad_gaussian_flow(2, 1.0), constant_classifier(2, 0.0f), 1.0,
                             LogZEstimate{});
  try {
    model.encode();
    FAIL() << "a callback classifier was encoded";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("XGBoost"), std::string::npos) << e.what();
  }
}

// A small calibrated model with an XGBoost classifier, for the bundle tests.
class CalibratedBundle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_flow = std::make_unique<Maf>(broad_gaussian_flow(2, 2.0));
    const CalibrationOptions options = quick_calibration_options(CeilingChoice::fixed(1.0));
    const GaussianTarget target{{1.0, -0.5}, {0.8, 1.2}, 2.0};
    const Matrix<float> data =
        sample_calibrated(CalibratedFlow(*shared_flow, target.classifier(), kInf, LogZEstimate{},
                                         target.max_log_ratio() + 0.01),
                          3000, {/*seed=*/9});
    shared_model = std::make_unique<CalibratedFlow>(calibrate(*shared_flow, data, options));
  }
  static void TearDownTestSuite() {
    shared_model.reset();
    shared_flow.reset();
  }
  static std::string temp_path(const std::string& name) { return ::testing::TempDir() + name; }

  static std::unique_ptr<Maf> shared_flow;
  static std::unique_ptr<CalibratedFlow> shared_model;
};
std::unique_ptr<Maf> CalibratedBundle::shared_flow;
std::unique_ptr<CalibratedFlow> CalibratedBundle::shared_model;

TEST_F(CalibratedBundle, SavesAndLoadsToTheSameDensityAndSamples) {
  const std::string path = temp_path("nfcal_bundle_roundtrip.nfcal");
  shared_model->save(path);

  const AnyModel loaded = load_model(path);

  ASSERT_TRUE(loaded.is_calibrated());
  EXPECT_EQ(loaded.kind(), "calibrated");
  const CalibratedFlow& back = *loaded.calibrated();
  const Matrix<float> x = uniform_rows(300, 2, 4.0f, 10);
  EXPECT_EQ(back.log_prob(x), shared_model->log_prob(x));
  EXPECT_DOUBLE_EQ(back.ceiling(), shared_model->ceiling());
  EXPECT_DOUBLE_EQ(back.log_z(), shared_model->log_z());
  EXPECT_DOUBLE_EQ(back.log_z_se(), shared_model->log_z_se());
  SamplerOptions sampler;
  sampler.seed = 3;
  EXPECT_EQ(loaded.sample(500, sampler).values(),
            sample_calibrated(*shared_model, 500, sampler).values());
  EXPECT_NE(back.metadata_json().find("\"xgboost_version\""), std::string::npos);
  EXPECT_NE(back.metadata_json().find("\"data_rows\":3000"), std::string::npos);
  std::remove(path.c_str());
}

TEST_F(CalibratedBundle, LoadModelReturnsAPlainFlowForAFlowFile) {
  const std::string path = temp_path("nfcal_bundle_flow.nfcal");
  save_flow(path, *shared_flow);

  const AnyModel loaded = load_model(path);

  EXPECT_FALSE(loaded.is_calibrated());
  const Matrix<float> x = uniform_rows(50, 2, 3.0f, 11);
  EXPECT_EQ(loaded.log_prob(x), shared_flow->log_prob(x));
  std::remove(path.c_str());
}

TEST_F(CalibratedBundle, CorruptedBundleIsAModelFormatError) {
  const std::string path = temp_path("nfcal_bundle_corrupt.nfcal");
  shared_model->save(path);
  std::string bytes = read_file_bytes(path);
  bytes[bytes.size() / 2] ^= 0x5a;
  write_file_atomically(path, bytes);

  EXPECT_THROW(load_model(path), ModelFormatError);
  std::remove(path.c_str());
}

TEST_F(CalibratedBundle, GarbageClassifierSectionNamesTheSectionAndXGBoostsReason) {
  ModelFile file = shared_model->encode();
  for (auto& section : file.sections) {
    if (section.first == "classifier") section.second = "{\"learner\": [not a model";
  }
  const ModelFile reread = decode_model_file(encode_model_file(file), "garbage.nfcal");

  try {
    CalibratedFlow::decode(reread);
    FAIL() << "a garbage classifier section was accepted";
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.kind(), ModelFormatError::Kind::kCorrupted);
    EXPECT_NE(std::string(e.what()).find("classifier section"), std::string::npos) << e.what();
  }
}

TEST_F(CalibratedBundle, HeaderNumbersThatCannotDescribeOneDensityAreRejected) {
  const ModelFile file = shared_model->encode();
  auto edited = [&](const std::function<void(Json&)>& edit) {
    ModelFile copy = file;
    Json header = Json::parse(copy.header_json);
    edit(header);
    copy.header_json = header.dump();
    return decode_model_file(encode_model_file(copy), "edited.nfcal");
  };
  auto message = [](const ModelFile& bad) -> std::string {
    try {
      CalibratedFlow::decode(bad);
    } catch (const ModelFormatError& e) {
      EXPECT_EQ(e.kind(), ModelFormatError::Kind::kCorrupted) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "the edited header was accepted";
    return "";
  };
  auto has = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };

  // The ceiling is the sampling bound; log Z lies between the margins' range and the bound.
  EXPECT_TRUE(
      has(message(edited([](Json& h) { h["ceiling"] = -1e300; })), "but the sampling bound is 1"));
  EXPECT_TRUE(
      has(message(edited([](Json& h) { h["log_z"] = 1e300; })), "is above the sampling bound"));
  EXPECT_TRUE(has(message(edited([](Json& h) { h["log_z"] = -1e300; })),
                  "below every margin the classifier can give"));
  // Without a ceiling the bound must cover every margin seen.
  EXPECT_TRUE(has(message(edited([](Json& h) {
                    h["ceiling"] = nullptr;
                    h["max_margin"] = h["sampling_bound"].get<double>() + 1;
                  })),
                  "below the largest margin seen"));

  // What the header says of the classifier must be what the section holds.
  EXPECT_TRUE(has(message(edited([](Json& h) { h["classifier"]["trees"] = 999; })),
                  "'classifier.trees' is 999"));
  EXPECT_TRUE(has(message(edited([](Json& h) { h["classifier"]["balance"] = 0.5; })),
                  "'classifier.balance' is 0.5"));
  EXPECT_TRUE(
      has(message(edited([](Json& h) { h["classifier"]["type"] = "lightgbm"; })), "\"lightgbm\""));

  // Optional numbers are numbers of the right range, named when not.
  EXPECT_TRUE(has(message(edited([](Json& h) { h["ess"] = "many"; })), "'ess' is not a number"));
  EXPECT_TRUE(has(message(edited([](Json& h) { h["ess"] = -3; })), "effective sample size"));
  EXPECT_TRUE(has(message(edited([](Json& h) { h["log_z_samples"] = 2.5; })),
                  "'log_z_samples' is not a count"));
  EXPECT_TRUE(has(message(edited([](Json& h) { h["log_z_se"] = -0.1; })), "'log_z_se'"));
  EXPECT_TRUE(has(message(edited([](Json& h) { h["max_margin"] = "x"; })), "'max_margin'"));

  // Unedited, the bundle loads.
  EXPECT_NO_THROW(CalibratedFlow::decode(edited([](Json&) {})));
}

TEST_F(CalibratedBundle, ClassifierOfAnotherDimensionIsRejectedOnLoad) {
  // A valid XGBoost model, but over three features, in a bundle whose flow has two.
  std::mt19937_64 gen(12);
  std::normal_distribution<float> normal;
  Matrix<float> a(200, 3), b(200, 3);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = normal(gen) + 1.0f;
  for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = normal(gen);
  XGBoostParams p;
  p.trees = 3;
  const XGBoostClassifier three = XGBoostClassifier::train(a, b, p);
  ModelFile file = shared_model->encode();
  for (auto& section : file.sections) {
    if (section.first == "classifier") section.second = three.to_bytes();
  }
  const ModelFile reread = decode_model_file(encode_model_file(file), "mismatch.nfcal");

  try {
    CalibratedFlow::decode(reread);
    FAIL() << "a classifier over 3 features was accepted for a 2-D flow";
  } catch (const ModelFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("3 features"), std::string::npos) << e.what();
  }
}

// Rows of the known Gaussian target, drawn exactly by rejection from the broad flow.
Matrix<float> target_rows(std::size_t n, std::uint64_t seed) {
  return GaussianTarget{{1.0, -0.5}, {0.8, 1.2}, 2.0}.draws(n, seed);
}

TEST(Calibrate, TargetAcceptanceModeReachesTheRequestedRate) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  CalibrationReport report;

  const CalibratedFlow model =
      calibrate(flow, target_rows(3000, 30),
                quick_calibration_options(CeilingChoice::target_acceptance(0.5)), &report);

  EXPECT_NEAR(model.acceptance_predicted(), 0.5, 1e-6);
  EXPECT_TRUE(model.exact_sampling());
  SamplerReport sampled;
  SamplerOptions sampler;
  sampler.seed = 31;
  sample_calibrated(model, 5000, sampler, &sampled);
  const double se = std::sqrt(0.25 / static_cast<double>(sampled.candidates));
  EXPECT_NEAR(sampled.acceptance_measured, 0.5, 4 * se + 4 * model.log_z_se() * 0.5);
}

TEST(Calibrate, NoCeilingModeBoundsSamplingByTheLargestSampledMargin) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  CalibrationOptions options = quick_calibration_options(CeilingChoice::none());
  options.bound_slack = 0.2;
  CalibrationReport report;

  const CalibratedFlow model = calibrate(flow, target_rows(3000, 32), options, &report);

  EXPECT_TRUE(std::isinf(model.ceiling()));
  EXPECT_FALSE(model.exact_sampling());
  EXPECT_FALSE(report.exact_sampling);
  EXPECT_DOUBLE_EQ(model.sampling_bound(), report.log_z.max_margin + 0.2);
  EXPECT_NE(report.summary().find("approximate"), std::string::npos);
}

TEST(Calibrate, WarnsWhenTooFewDataRowsAreHeldOut) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const CalibrationOptions options = quick_calibration_options(CeilingChoice::fixed(1.0));
  auto held_out_warning = [](const CalibrationReport& report) {
    return report.summary().find("data rows were held out") != std::string::npos;
  };

  CalibrationReport small;
  calibrate(flow, target_rows(200, 33), options, &small);
  CalibrationReport large;
  calibrate(flow, target_rows(3000, 34), options, &large);

  EXPECT_LT(small.classifier.heldout_data_rows, 100u);
  EXPECT_TRUE(held_out_warning(small)) << small.summary();
  EXPECT_GE(large.classifier.heldout_data_rows, 100u);
  EXPECT_FALSE(held_out_warning(large)) << large.summary();
}

TEST(Calibrate, GivenValidationRowsAreTheHeldOutRows) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  const Matrix<float> train = target_rows(2000, 35);
  const Matrix<float> validation = target_rows(500, 36);
  CalibrationOptions options = quick_calibration_options(CeilingChoice::automatic());
  options.flow_ratio = 2;
  CalibrationReport report;

  const CalibratedFlow model = calibrate(flow, train, options, &report, &validation);

  // The validation rows are held out against twice as many flow rows, every training row
  // trains, and the held-out log-likelihood is the flow's on the validation rows.
  EXPECT_EQ(report.classifier.heldout_data_rows, 500u);
  EXPECT_EQ(report.classifier.heldout_flow_rows, 1000u);
  EXPECT_EQ(report.classifier.train_data_rows, 2000u);
  EXPECT_NEAR(report.heldout_flow_log_likelihood, mean_of(flow.log_prob(validation)), 1e-6);
  EXPECT_GT(report.heldout_gain, 2 * report.heldout_gain_se) << report.summary();
  EXPECT_NE(model.metadata_json().find("\"validation_rows\":500"), std::string::npos);

  const Matrix<float> wide(10, 3, 0.5f);
  EXPECT_THROW(calibrate(flow, train, options, nullptr, &wide), DataError);
}

TEST(Calibrate, AutoModeChoosesTheBestAdmissibleGridCeilingOnHeldOutRows) {
  const Maf flow = broad_gaussian_flow(2, 2.0);
  CalibrationOptions options = quick_calibration_options(CeilingChoice::automatic());
  options.auto_min_acceptance = 0.2;
  CalibrationReport report;

  const CalibratedFlow model = calibrate(flow, target_rows(3000, 33), options, &report);

  // Recompute the choice from the held-out margins the report returns.
  const auto& data_m = report.classifier.heldout_data_margins;
  const auto& flow_m = report.classifier.heldout_flow_margins;
  double best_gain = -kInf, best_ceiling = kInf;
  for (const double ceiling : options.ceiling_grid) {
    const LogZEstimate z = estimate_log_z(flow_m.data(), flow_m.size(), ceiling);
    if (std::exp(z.log_z - ceiling) < 0.2) continue;
    const double gain = heldout_gain(data_m, flow_m, ceiling);
    if (gain > best_gain) {
      best_gain = gain;
      best_ceiling = ceiling;
    }
  }
  EXPECT_DOUBLE_EQ(model.ceiling(), best_ceiling);
  EXPECT_EQ(report.ceiling_gains.size(), options.ceiling_grid.size());
  EXPECT_NEAR(report.heldout_gain, best_gain, 1e-9);
  EXPECT_GE(model.acceptance_predicted(), 0.2 - 4 * model.log_z_se());
  // Calibrating toward a target that differs from the flow gains on held-out rows.
  EXPECT_TRUE(report.improved) << report.summary();
}

TEST(Calibrate, AutoModeGoesBelowTheGridWhenNoGridCeilingAcceptsEnough) {
  // Data in a small box that the broad flow rarely visits: every grid ceiling accepts a few
  // per mille, so auto takes the largest ceiling that still accepts the minimum share.
  const Maf flow = broad_gaussian_flow(2, 3.0);
  const CalibrationOptions options = quick_calibration_options(CeilingChoice::automatic());
  CalibrationReport report;

  const CalibratedFlow model = calibrate(flow, uniform_rows(3000, 2, 0.1f, 34), options, &report);

  EXPECT_LT(model.ceiling(), options.ceiling_grid.front());
  EXPECT_EQ(report.ceiling_gains.size(), options.ceiling_grid.size() + 1);
  EXPECT_NEAR(model.acceptance_predicted(), options.auto_min_acceptance,
              0.3 * options.auto_min_acceptance)
      << report.summary();
  EXPECT_TRUE(report.improved) << report.summary();
  const Matrix<float> x = sample_calibrated(model, 200, {/*seed=*/35});
  EXPECT_EQ(x.rows(), 200u);
}

// calibrate() with XGBoost on a flow trained for a few epochs on 2-D data with two modes.
struct TwoModeCase {
  Maf flow;
  CalibratedFlow model;
  CalibrationReport report;
};

TwoModeCase calibrate_undertrained(const Matrix<float>& train, std::uint64_t seed) {
  MafConfig config;
  config.dim = 2;
  config.layers = 3;
  config.hidden = 32;
  config.hidden_layers = 1;
  config.seed = seed;
  Maf flow(config);
  TrainConfig tc;
  tc.epochs = 3;
  tc.batch_size = 128;
  tc.learning_rate = 3e-3;
  tc.seed = seed;
  fit(flow, train, nullptr, tc);

  CalibrationOptions options;
  options.classifier.trees = 200;
  options.classifier.max_depth = 4;
  options.classifier.threads = 2;
  options.classifier.early_stopping_rounds = 30;
  options.log_z_samples = 30000;
  options.seed = seed;
  CalibrationReport report;
  CalibratedFlow model = calibrate(flow, train, options, &report);
  return TwoModeCase{flow, std::move(model), report};
}

TEST(Calibrate, XGBoostRaisesHeldOutLikelihoodAndEmptiesTheGapBetweenBlobs) {
  const Matrix<float> train = blob_rows(4000, 13);
  const Matrix<float> test = blob_rows(2000, 14);
  const TwoModeCase c = calibrate_undertrained(train, 15);

  // Test log-likelihood: higher, by more than its paired standard error.
  const std::vector<float> flow_lp = c.flow.log_prob(test);
  const std::vector<float> cal_lp = c.model.log_prob(test);
  std::vector<float> diff(flow_lp.size());
  for (std::size_t i = 0; i < diff.size(); ++i) diff[i] = cal_lp[i] - flow_lp[i];
  const double gain = mean_of(diff);
  double var = 0;
  for (const float d : diff) var += (d - gain) * (d - gain);
  const double se = std::sqrt(var / (diff.size() - 1) / diff.size());
  EXPECT_GT(gain, 3 * se + 2 * c.model.log_z_se()) << c.report.summary();
  EXPECT_TRUE(c.report.improved) << c.report.summary();

  // Mass in the gap |x0| < 1.5: the data has almost none, the flow a bridge, and the
  // calibrated samples close most of the distance between the two.
  auto gap_share = [](const Matrix<float>& x) {
    std::size_t in = 0;
    for (std::size_t i = 0; i < x.rows(); ++i) in += std::abs(x(i, 0)) < 1.5f ? 1 : 0;
    return static_cast<double>(in) / static_cast<double>(x.rows());
  };
  const double data_gap = gap_share(test);
  const double flow_gap = gap_share(c.flow.sample(20000, 16));
  const double calibrated_gap = gap_share(sample_calibrated(c.model, 20000, {/*seed=*/16}));
  EXPECT_GT(flow_gap, data_gap + 0.01) << "the under-trained flow should bridge the modes";
  EXPECT_LT(calibrated_gap - data_gap, 0.6 * (flow_gap - data_gap))
      << "data " << data_gap << " flow " << flow_gap << " calibrated " << calibrated_gap;
}

TEST(Calibrate, XGBoostRaisesHeldOutLikelihoodOnTwoMoons) {
  const Matrix<float> train = moon_rows(4000, 17);
  const Matrix<float> test = moon_rows(2000, 18);
  const TwoModeCase c = calibrate_undertrained(train, 19);

  EvaluateOptions options;
  options.acceptance_samples = 2000;
  const Evaluation e = evaluate(AnyModel(c.model), test, options);

  EXPECT_GT(e.calibrated_log_likelihood - e.flow_log_likelihood,
            2 * e.flow_log_likelihood_se + 2 * e.log_z_se)
      << e.to_table();
  EXPECT_GT(e.auc, 0.55);
  EXPECT_LT(e.log_loss, std::log(2.0));
  // Acceptance by sampling agrees with Z_L / exp(L) within binomial and log Z error.
  EXPECT_NEAR(e.acceptance_measured, e.acceptance_predicted,
              0.08 * e.acceptance_predicted + 4 * e.log_z_se * e.acceptance_predicted)
      << e.to_table();

  // Mass off the moons, more than three noise deviations (0.3) from both arcs: the data has
  // almost none, the flow's bridges and smeared ends carry some, the calibrated samples less.
  auto off_arc_share = [](const Matrix<float>& x) {
    std::size_t off = 0;
    for (std::size_t i = 0; i < x.rows(); ++i) {
      const double upper = std::hypot(x(i, 0), x(i, 1));
      const double lower = std::hypot(x(i, 0) - 1.0, x(i, 1) - 0.5);
      // Distance to an arc: to its circle on its half plane, to the nearer end otherwise.
      const double to_upper = x(i, 1) >= 0 ? std::fabs(upper - 1.0)
                                           : std::min(std::hypot(x(i, 0) - 1.0, x(i, 1)),
                                                      std::hypot(x(i, 0) + 1.0, x(i, 1)));
      const double to_lower = x(i, 1) <= 0.5 ? std::fabs(lower - 1.0)
                                             : std::min(std::hypot(x(i, 0), x(i, 1) - 0.5),
                                                        std::hypot(x(i, 0) - 2.0, x(i, 1) - 0.5));
      off += std::min(to_upper, to_lower) > 0.3 ? 1 : 0;
    }
    return static_cast<double>(off) / static_cast<double>(x.rows());
  };
  const double data_off = off_arc_share(test);
  const double flow_off = off_arc_share(c.flow.sample(20000, 20));
  const double calibrated_off = off_arc_share(sample_calibrated(c.model, 20000, {/*seed=*/20}));
  EXPECT_LT(data_off, 0.02);
  EXPECT_GT(flow_off, 2 * data_off) << "the under-trained flow should smear the moons";
  EXPECT_LT(calibrated_off - data_off, 0.5 * (flow_off - data_off))
      << "data " << data_off << " flow " << flow_off << " calibrated " << calibrated_off;
}

TEST(Calibrate, DataDrawnFromTheFlowItselfLeavesTheFlowUnchangedAndSaysSo) {
  // P = Q: every split the trees find is noise, so auto finds no held-out gain and keeps the
  // flow: a ceiling below every margin, log Z equal to it, and every candidate accepted.
  const Maf flow = broad_gaussian_flow(2, 1.0);
  CalibrationOptions options;
  options.classifier.threads = 2;
  options.log_z_samples = 50000;
  options.seed = 21;
  CalibrationReport report;

  const CalibratedFlow model = calibrate(flow, flow.sample(4000, 22), options, &report);

  EXPECT_FALSE(report.improved) << report.summary();
  ASSERT_TRUE(report.flow_unchanged) << report.summary();
  EXPECT_NE(report.summary().find("scores and samples as the flow does"), std::string::npos)
      << report.summary();
  EXPECT_NE(report.to_json().find("\"flow_unchanged\": true"), std::string::npos);
  EXPECT_NE(model.metadata_json().find("\"flow_unchanged\":true"), std::string::npos);
  EXPECT_DOUBLE_EQ(report.heldout_calibrated_log_likelihood, report.heldout_flow_log_likelihood);

  const Matrix<float> test = flow.sample(20000, 23);
  const std::vector<float> margins = model.margins(test);
  EXPECT_GE(*std::min_element(margins.begin(), margins.end()), model.ceiling());
  EXPECT_NEAR(model.log_z(), model.ceiling(), 1e-12);
  EXPECT_DOUBLE_EQ(model.acceptance_predicted(), 1.0);
  const std::vector<float> flow_lp = flow.log_prob(test);
  const std::vector<float> cal_lp = model.log_prob(test);
  for (std::size_t i = 0; i < test.rows(); ++i) ASSERT_NEAR(cal_lp[i], flow_lp[i], 1e-5) << i;
  EXPECT_EQ(sample_calibrated(model, 3000, {/*seed=*/24}).values(), flow.sample(3000, 24).values());

  // A ceiling the user fixed is kept as given, with the warning alone.
  CalibrationReport fixed;
  options.ceiling = CeilingChoice::fixed(1.0);
  calibrate(flow, flow.sample(4000, 22), options, &fixed);
  EXPECT_FALSE(fixed.flow_unchanged);
  EXPECT_DOUBLE_EQ(fixed.ceiling, 1.0);
}

TEST(CalibrationReport, WarnsOfNoGainAnUnclearGainFewHeldOutRowsAndUnaffordableSampling) {
  auto has = [](const std::vector<std::string>& warnings, const std::string& text) {
    return std::any_of(warnings.begin(), warnings.end(),
                       [&](const std::string& w) { return w.find(text) != std::string::npos; });
  };
  CalibrationReport clear;
  clear.improved = true;
  clear.heldout_gain = 0.2;
  clear.heldout_gain_se = 0.01;
  clear.acceptance_predicted = 0.4;
  clear.classifier.heldout_data_rows = 100;
  EXPECT_TRUE(clear.warnings().empty());

  CalibrationReport none = clear;
  none.improved = false;
  none.heldout_gain = -0.01;
  EXPECT_TRUE(has(none.warnings(), "no gain on held-out rows"));

  CalibrationReport unclear = clear;
  unclear.heldout_gain = 0.015;
  EXPECT_TRUE(has(unclear.warnings(), "within two standard errors"));
  EXPECT_FALSE(has(unclear.warnings(), "no gain"));

  CalibrationReport few = clear;
  few.classifier.heldout_data_rows = 99;
  ASSERT_EQ(few.warnings().size(), 1u);
  EXPECT_TRUE(has(few.warnings(), "only 99 data rows were held out"));

  CalibrationReport costly = clear;
  costly.acceptance_predicted = 1e-5;
  EXPECT_EQ(costly.warnings().size(), 1u);
  EXPECT_TRUE(has(costly.warnings(), "would accept 1e-05 of its candidates"));
  EXPECT_NE(costly.summary().find("warning: the rejection sampler"), std::string::npos);
}

TEST(CalibrationReport, JsonCarriesTheNumbersAndTheWarnings) {
  CalibrationReport report;
  report.classifier.trees_trained = 80;
  report.classifier.trees_kept = 30;
  report.classifier.heldout_data_rows = 40;
  report.classifier_input = ClassifierInput::kDataAndLatent;
  report.ceiling = std::numeric_limits<double>::infinity();
  report.ceiling_gains = {{0.5, 0.01}, {1.0, 0.02}};
  report.heldout_gain = 0.02;
  report.heldout_gain_se = 0.004;
  report.improved = true;
  report.log_z.log_z = 0.1;
  report.log_z.samples = 5000;
  report.acceptance_predicted = 0.3;
  report.exact_sampling = false;

  const nlohmann::json j = nlohmann::json::parse(report.to_json());

  EXPECT_EQ(j["classifier"]["trees_kept"], 30);
  EXPECT_EQ(j["classifier"]["input"], "data+latent");
  EXPECT_TRUE(j["ceiling"].is_null()) << "an infinite ceiling is null";
  ASSERT_EQ(j["ceiling_gains"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["ceiling_gains"][1]["ceiling"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["ceiling_gains"][1]["heldout_gain"].get<double>(), 0.02);
  EXPECT_DOUBLE_EQ(j["heldout_gain_se"].get<double>(), 0.004);
  EXPECT_EQ(j["log_z_samples"], 5000);
  EXPECT_FALSE(j["exact_sampling"].get<bool>());
  ASSERT_EQ(j["warnings"].size(), report.warnings().size());
  EXPECT_NE(j["warnings"][0].get<std::string>().find("only 40 data rows"), std::string::npos);
}

TEST(Calibrate, RejectsBadOptionsAndDataByName) {
  const Maf flow = broad_gaussian_flow(2, 1.0);
  const Matrix<float> data = uniform_rows(100, 2, 1.0f, 20);
  const Matrix<float> wide = uniform_rows(100, 3, 1.0f, 21);
  CalibrationOptions bad_ratio;
  bad_ratio.flow_ratio = 0;
  CalibrationOptions bad_target;
  bad_target.ceiling = CeilingChoice::target_acceptance(1.5);
  const CalibrationOptions defaults;

  EXPECT_THROW(calibrate(flow, data, bad_ratio), InvalidArgument);
  for (const double ratio : {kMaxFlowRatio * 2, 1e300, std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN()}) {
    bad_ratio.flow_ratio = ratio;
    try {
      calibrate(flow, data, bad_ratio);
      FAIL() << "flow_ratio " << ratio << " was accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("flow_ratio"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(calibrate(flow, data, bad_target), InvalidArgument);
  EXPECT_THROW(calibrate(flow, wide, defaults), DataError);
}

}  // namespace
}  // namespace nfcal
