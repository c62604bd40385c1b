// XGBoostClassifier through the C API: margins against a known log density ratio, the class
// balance, held-out tree selection, model bytes, and errors that carry XGBoost's message.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/xgboost_classifier.hpp"

namespace nfcal {
namespace {

// n rows of N(mean, I) in `dim` dimensions.
Matrix<float> gaussian_rows(std::size_t n, int dim, float mean0, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix<float> x(n, dim);
  for (std::size_t i = 0; i < n; ++i) {
    for (int j = 0; j < dim; ++j) x(i, j) = normal(gen) + (j == 0 ? mean0 : 0.0f);
  }
  return x;
}

XGBoostParams small_params() {
  XGBoostParams p;
  p.trees = 150;
  p.max_depth = 3;
  p.learning_rate = 0.1;
  p.threads = 2;
  p.early_stopping_rounds = 30;
  return p;
}

// Mean absolute error of the margins against log q/p = x0 - 0.5, the ratio of N((1, 0), I) to
// N(0, I), on the bulk of both distributions, where the classifier has data to learn from.
double mean_error_against_shifted_gaussian_ratio(const XGBoostClassifier& clf) {
  Matrix<float> probe(9, 2);
  for (int i = 0; i < 9; ++i) probe(i, 0) = -1.0f + 0.25f * static_cast<float>(i);
  const std::vector<float> m = clf.margins(probe);
  double abs_error = 0;
  for (int i = 0; i < 9; ++i) abs_error += std::abs(m[i] - (probe(i, 0) - 0.5));
  return abs_error / 9;
}

TEST(XGBoostClassifier, MarginsApproximateTheKnownLogDensityRatio) {
  // Data N((1, 0), I) against flow N(0, I): log q/p = x0 - 0.5 exactly.
  const Matrix<float> data = gaussian_rows(4000, 2, 1.0f, 1);
  const Matrix<float> flow = gaussian_rows(4000, 2, 0.0f, 2);
  XGBoostTrainReport report;

  const XGBoostClassifier clf = XGBoostClassifier::train(data, flow, small_params(), {}, &report);

  EXPECT_LT(mean_error_against_shifted_gaussian_ratio(clf), 0.3);
  EXPECT_GT(report.best_score, 0.2);  // the truth's gain is KL(q || p) = 0.5 nats
  EXPECT_EQ(clf.num_features(), 2);
  EXPECT_EQ(clf.num_trees(), report.trees_kept);
}

// A boosted forest: three trees per round, each on its own subsample, averaged. Summed instead
// of averaged they would overshoot the ratio about threefold.
TEST(XGBoostClassifier, ParallelTreesAverageSeveralTreesPerRound) {
  const Matrix<float> data = gaussian_rows(4000, 2, 1.0f, 1);
  const Matrix<float> flow = gaussian_rows(4000, 2, 0.0f, 2);
  XGBoostParams p = small_params();
  p.parallel_trees = 3;
  p.subsample = 0.7;
  XGBoostTrainReport report;

  const XGBoostClassifier clf = XGBoostClassifier::train(data, flow, p, {}, &report);

  EXPECT_LT(mean_error_against_shifted_gaussian_ratio(clf), 0.3);
  EXPECT_GT(report.best_score, 0.2);

  // Rounds are counted as before; the model holds three trees for each, and they differ.
  EXPECT_EQ(clf.num_trees(), report.trees_kept);
  const nlohmann::json model = nlohmann::json::parse(clf.to_bytes("json"));
  const nlohmann::json& trees = model["learner"]["gradient_booster"]["model"]["trees"];
  ASSERT_EQ(trees.size(), 3u * static_cast<std::size_t>(clf.num_trees()));
  EXPECT_NE(trees[0]["split_conditions"], trees[1]["split_conditions"]);
  EXPECT_NE(trees[1]["split_conditions"], trees[2]["split_conditions"]);
}

TEST(XGBoostClassifier, MarginLowerBoundIsBelowEveryMarginAndTightForAStump) {
  const Matrix<float> data = gaussian_rows(3000, 2, 1.0f, 6);
  const Matrix<float> flow = gaussian_rows(6000, 2, 0.0f, 7);  // a balance of log(1/2)
  // Probe rows far beyond the training rows too, where every split falls one way.
  Matrix<float> probe = gaussian_rows(20000, 2, 0.0f, 8);
  for (std::size_t i = 0; i < probe.size(); ++i) probe.data()[i] *= 4.0f;
  auto smallest = [&](const XGBoostClassifier& clf) {
    const std::vector<float> m = clf.margins(probe);
    return static_cast<double>(*std::min_element(m.begin(), m.end()));
  };

  // One stump: two leaves, and the probe reaches both, so the bound is the smaller margin.
  XGBoostParams stump = small_params();
  stump.trees = 1;
  stump.max_depth = 1;
  stump.early_stopping_rounds = 0;
  const XGBoostClassifier one = XGBoostClassifier::train(data, flow, stump);
  EXPECT_LE(one.margin_lower_bound(), smallest(one));
  EXPECT_NEAR(one.margin_lower_bound(), smallest(one), 1e-3);

  // Many deeper trees: a bound below every margin, if no longer reached.
  const XGBoostClassifier many = XGBoostClassifier::train(data, flow, small_params());
  ASSERT_GT(many.num_trees(), 5);
  EXPECT_LE(many.margin_lower_bound(), smallest(many));
  EXPECT_GT(many.margin_lower_bound(), smallest(many) - 20.0);
}

TEST(XGBoostClassifier, ClassBalanceIsRemovedFromMargins) {
  // Same distribution, three flow rows per data row: the raw margin is about log(1/3).
  const Matrix<float> data = gaussian_rows(1000, 2, 0.0f, 3);
  const Matrix<float> flow = gaussian_rows(3000, 2, 0.0f, 4);
  XGBoostParams p = small_params();
  p.trees = 20;

  const XGBoostClassifier clf = XGBoostClassifier::train(data, flow, p);

  EXPECT_NEAR(clf.balance(), std::log(800.0 / 2400.0), 1e-9);
  const std::vector<float> m = clf.margins(gaussian_rows(500, 2, 0.0f, 5));
  double mean = 0;
  for (const float v : m) mean += v;
  EXPECT_NEAR(mean / m.size(), 0.0, 0.15);
}

TEST(XGBoostClassifier, StopsEarlyWhenHeldOutGainStopsGrowing) {
  // Indistinguishable classes: extra trees only fit noise.
  const Matrix<float> data = gaussian_rows(1500, 2, 0.0f, 6);
  const Matrix<float> flow = gaussian_rows(1500, 2, 0.0f, 7);
  XGBoostParams p = small_params();
  p.trees = 400;
  p.early_stopping_rounds = 15;
  XGBoostTrainReport report;

  XGBoostClassifier::train(data, flow, p, {}, &report);

  EXPECT_TRUE(report.stopped_early);
  EXPECT_LT(report.trees_trained, 400);
  EXPECT_EQ(report.trees_trained - report.trees_kept, 15);
  EXPECT_EQ(report.score_history.size(), static_cast<std::size_t>(report.trees_trained));
  EXPECT_EQ(report.heldout_data_rows, 300u);
  EXPECT_EQ(report.heldout_flow_rows, 300u);
  EXPECT_EQ(report.heldout_data_margins.size(), 300u);
}

TEST(XGBoostClassifier, NoEarlyStoppingKeepsEveryTree) {
  const Matrix<float> data = gaussian_rows(600, 2, 0.0f, 19);
  const Matrix<float> flow = gaussian_rows(600, 2, 0.0f, 20);
  XGBoostParams p = small_params();
  p.trees = 40;
  p.early_stopping_rounds = 0;
  XGBoostTrainReport report;

  const XGBoostClassifier clf = XGBoostClassifier::train(data, flow, p, {}, &report);

  EXPECT_EQ(clf.num_trees(), 40);
  EXPECT_EQ(report.trees_kept, 40);
  EXPECT_DOUBLE_EQ(report.best_score, report.score_history.back());
  const Matrix<float> probe = gaussian_rows(10, 2, 0.0f, 21);
  std::vector<float> out(10);
  EXPECT_THROW(clf.margins(probe.data(), 10, out.data(), 41), InvalidArgument);
}

TEST(XGBoostClassifier, KeptTreesMaximizeTheSelectionScore) {
  const Matrix<float> data = gaussian_rows(1500, 2, 0.7f, 8);
  const Matrix<float> flow = gaussian_rows(1500, 2, 0.0f, 9);
  XGBoostTrainReport report;

  XGBoostClassifier::train(data, flow, small_params(), {}, &report);

  double best = -1e300;
  int argmax = 0;
  for (std::size_t i = 0; i < report.score_history.size(); ++i) {
    if (report.score_history[i] > best) {
      best = report.score_history[i];
      argmax = static_cast<int>(i) + 1;
    }
  }
  EXPECT_EQ(report.trees_kept, argmax);
  // The margins reported for the kept model reproduce its score.
  EXPECT_NEAR(heldout_gain(report.heldout_data_margins, report.heldout_flow_margins,
                           std::numeric_limits<double>::infinity()),
              report.best_score, 1e-4);
}

TEST(XGBoostClassifier, RefitBoostsTheChosenTreesOnEveryRowAndLeavesHeldOutMarginsAlone) {
  const Matrix<float> data = gaussian_rows(1500, 2, 0.7f, 22);
  const Matrix<float> flow = gaussian_rows(3000, 2, 0.0f, 23);
  XGBoostParams p = small_params();
  p.refit = false;
  XGBoostTrainReport chosen;
  const XGBoostClassifier split_model = XGBoostClassifier::train(data, flow, p, {}, &chosen);
  p.refit = true;
  XGBoostTrainReport refitted;
  const XGBoostClassifier refit_model = XGBoostClassifier::train(data, flow, p, {}, &refitted);

  // Selection is untouched: same trees kept, and held-out margins of the model that chose them.
  EXPECT_FALSE(chosen.refit);
  EXPECT_TRUE(refitted.refit);
  EXPECT_EQ(refitted.trees_kept, chosen.trees_kept);
  EXPECT_EQ(refitted.heldout_data_margins, chosen.heldout_data_margins);
  EXPECT_EQ(refitted.heldout_flow_margins, chosen.heldout_flow_margins);

  // The returned model is the kept number of trees boosted on all rows: the same as training
  // that many trees with nothing held out, and not the split model.
  XGBoostParams all_rows = p;
  all_rows.refit = false;
  all_rows.validation_fraction = 0;
  all_rows.trees = chosen.trees_kept;
  const XGBoostClassifier reference = XGBoostClassifier::train(data, flow, all_rows);
  EXPECT_EQ(refit_model.num_trees(), chosen.trees_kept);
  EXPECT_NEAR(refit_model.balance(), std::log(1500.0 / 3000.0), 1e-12);
  const Matrix<float> probe = gaussian_rows(300, 2, 0.3f, 24);
  const std::vector<float> m = refit_model.margins(probe);
  const std::vector<float> expected = reference.margins(probe);
  const std::vector<float> split_m = split_model.margins(probe);
  double differs_from_split = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    EXPECT_NEAR(m[i], expected[i], 1e-3) << "row " << i;
    differs_from_split = std::max(differs_from_split, std::abs(double(m[i]) - split_m[i]));
  }
  EXPECT_GT(differs_from_split, 1e-2);
}

// Rows stacked: a's rows, then b's.
Matrix<float> stacked(const Matrix<float>& a, const Matrix<float>& b) {
  Matrix<float> out(a.rows() + b.rows(), a.cols());
  std::copy(a.data(), a.data() + a.size(), out.data());
  std::copy(b.data(), b.data() + b.size(), out.data() + a.size());
  return out;
}

TEST(XGBoostClassifier, GivenHeldOutRowsChooseTheTreesAndJoinTheRefit) {
  const Matrix<float> data = gaussian_rows(1500, 2, 1.0f, 30);
  const Matrix<float> flow = gaussian_rows(3000, 2, 0.0f, 31);
  const Matrix<float> held_data = gaussian_rows(400, 2, 1.0f, 32);
  const Matrix<float> held_flow = gaussian_rows(800, 2, 0.0f, 33);
  XGBoostParams p = small_params();
  p.refit = false;
  XGBoostTrainReport chosen;

  const XGBoostClassifier split_free =
      XGBoostClassifier::train(data, flow, p, {}, &chosen, {}, {&held_data, &held_flow});

  // Every given row is held out and every other row trains.
  EXPECT_EQ(chosen.heldout_data_rows, 400u);
  EXPECT_EQ(chosen.heldout_flow_rows, 800u);
  EXPECT_EQ(chosen.train_data_rows, 1500u);
  EXPECT_EQ(chosen.train_flow_rows, 3000u);
  ASSERT_EQ(chosen.heldout_data.size(), held_data.size());
  EXPECT_TRUE(std::equal(held_data.data(), held_data.data() + held_data.size(),
                         chosen.heldout_data.data()));
  EXPECT_EQ(chosen.heldout_data_margins, split_free.margins(held_data));
  EXPECT_LT(mean_error_against_shifted_gaussian_ratio(split_free), 0.3);

  // The refit boosts the chosen number of trees on the training and held-out rows together.
  p.refit = true;
  XGBoostTrainReport refitted;
  const XGBoostClassifier refit_model =
      XGBoostClassifier::train(data, flow, p, {}, &refitted, {}, {&held_data, &held_flow});
  XGBoostParams all_rows = p;
  all_rows.refit = false;
  all_rows.validation_fraction = 0;
  all_rows.trees = chosen.trees_kept;
  const XGBoostClassifier reference =
      XGBoostClassifier::train(stacked(data, held_data), stacked(flow, held_flow), all_rows);
  EXPECT_EQ(refitted.trees_kept, chosen.trees_kept);
  EXPECT_NEAR(refit_model.balance(), std::log(1900.0 / 3800.0), 1e-12);
  const Matrix<float> probe = gaussian_rows(300, 2, 0.5f, 34);
  const std::vector<float> m = refit_model.margins(probe);
  const std::vector<float> expected = reference.margins(probe);
  for (std::size_t i = 0; i < m.size(); ++i) EXPECT_NEAR(m[i], expected[i], 1e-3) << "row " << i;
}

TEST(XGBoostClassifier, GivenHeldOutRowsMustHaveBothClassesRowsAndTheRightColumns) {
  const Matrix<float> data = gaussian_rows(200, 2, 1.0f, 35);
  const Matrix<float> flow = gaussian_rows(200, 2, 0.0f, 36);
  const Matrix<float> empty(0, 2);
  const Matrix<float> wide = gaussian_rows(50, 3, 0.0f, 37);
  const XGBoostParams p = small_params();

  EXPECT_THROW(XGBoostClassifier::train(data, flow, p, {}, nullptr, {}, {&data, nullptr}),
               InvalidArgument);
  EXPECT_THROW(XGBoostClassifier::train(data, flow, p, {}, nullptr, {}, {&empty, &flow}),
               InvalidArgument);
  EXPECT_THROW(XGBoostClassifier::train(data, flow, p, {}, nullptr, {}, {&wide, &flow}), DataError);
}

TEST(XGBoostClassifier, RoundCallbackSeesTheSelectionThenTheRefitCountedOn) {
  const Matrix<float> data = gaussian_rows(1000, 2, 0.7f, 25);
  const Matrix<float> flow = gaussian_rows(2000, 2, 0.0f, 26);
  std::vector<BoostingRound> seen;
  const RoundCallback record = [&seen](const BoostingRound& r) { seen.push_back(r); };
  XGBoostTrainReport report;
  XGBoostClassifier::train(data, flow, small_params(), {}, &report, record);

  // One call per selection round with its held-out score, then one per refit round.
  const auto trained = static_cast<std::size_t>(report.trees_trained);
  const auto kept = static_cast<std::size_t>(report.trees_kept);
  ASSERT_EQ(seen.size(), trained + kept);
  for (std::size_t i = 0; i < trained; ++i) {
    EXPECT_FALSE(seen[i].refit);
    EXPECT_EQ(seen[i].rounds, static_cast<int>(i) + 1);
    EXPECT_DOUBLE_EQ(seen[i].score, report.score_history[i]);
  }
  for (std::size_t k = 0; k < kept; ++k) {
    const BoostingRound& r = seen[trained + k];
    EXPECT_TRUE(r.refit);
    EXPECT_EQ(r.rounds, static_cast<int>(trained + k) + 1);
    EXPECT_EQ(r.rounds_at_most, static_cast<int>(trained + kept));
  }

  // Nothing held out: no scores and no refit, yet no round is taken for one.
  XGBoostParams all_rows = small_params();
  all_rows.validation_fraction = 0;
  all_rows.trees = 12;
  seen.clear();
  XGBoostClassifier::train(data, flow, all_rows, {}, nullptr, record);
  ASSERT_EQ(seen.size(), 12u);
  for (const BoostingRound& r : seen) {
    EXPECT_FALSE(r.refit);
    EXPECT_TRUE(std::isnan(r.score));
    EXPECT_EQ(r.rounds_at_most, 12);
  }
}

TEST(XGBoostClassifier, ModelBytesRoundTripToIdenticalMargins) {
  const Matrix<float> data = gaussian_rows(800, 3, 1.0f, 10);
  const Matrix<float> flow = gaussian_rows(800, 3, 0.0f, 11);
  XGBoostParams p = small_params();
  p.trees = 30;
  const XGBoostClassifier clf = XGBoostClassifier::train(data, flow, p);
  const Matrix<float> probe = gaussian_rows(200, 3, 0.5f, 12);
  const std::vector<float> expected = clf.margins(probe);

  for (const std::string format : {"ubj", "json"}) {
    const XGBoostClassifier back = XGBoostClassifier::from_bytes(clf.to_bytes(format), 1);
    EXPECT_EQ(back.margins(probe), expected) << format;
    EXPECT_EQ(back.num_features(), 3);
    EXPECT_DOUBLE_EQ(back.balance(), clf.balance());
  }
  EXPECT_THROW(XGBoostClassifier::from_bytes(clf.to_bytes("ubj"), kMaxThreads + 1),
               InvalidArgument);

  const std::string path = ::testing::TempDir() + "nfcal_xgb_roundtrip.ubj";
  clf.save(path);
  EXPECT_EQ(XGBoostClassifier::load(path).margins(probe), expected);
  std::remove(path.c_str());
}

TEST(XGBoostClassifier, SameSeedGivesTheSameModel) {
  const Matrix<float> data = gaussian_rows(600, 2, 1.0f, 13);
  const Matrix<float> flow = gaussian_rows(600, 2, 0.0f, 14);
  XGBoostParams p = small_params();
  p.trees = 25;
  p.subsample = 0.7;
  p.colsample = 0.5;

  const XGBoostClassifier a = XGBoostClassifier::train(data, flow, p);
  const XGBoostClassifier b = XGBoostClassifier::train(data, flow, p);

  const Matrix<float> probe = gaussian_rows(100, 2, 0.5f, 15);
  EXPECT_EQ(a.margins(probe), b.margins(probe));
}

TEST(XGBoostClassifier, CorruptedModelBytesRaiseXGBoostErrorWithItsMessage) {
  try {
    XGBoostClassifier::from_bytes(std::string("{\"learner\": broken"));
    FAIL() << "corrupted bytes were accepted";
  } catch (const XGBoostError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("XGBoosterLoadModelFromBuffer"), std::string::npos) << message;
    EXPECT_GT(message.size(), std::string("XGBoost XGBoosterLoadModelFromBuffer failed: ").size())
        << message;
  }
  EXPECT_THROW(XGBoostClassifier::from_bytes(""), XGBoostError);

  // A model cut short: XGBoost's reason on one line, without its stack trace or time stamp.
  const XGBoostClassifier model = XGBoostClassifier::train(
      gaussian_rows(200, 2, 1.0f, 30), gaussian_rows(200, 2, 0.0f, 31), small_params());
  const std::string bytes = model.to_bytes("ubj");
  try {
    XGBoostClassifier::from_bytes(bytes.substr(0, bytes.size() / 2));
    FAIL() << "half a model was accepted";
  } catch (const XGBoostError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("XGBoost XGBoosterLoadModelFromBuffer failed: ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.find("Stack trace"), std::string::npos) << message;
    EXPECT_EQ(message.find("[bt]"), std::string::npos) << message;
    EXPECT_EQ(message.find("] "), std::string::npos) << message;
  }

  // Bytes that are not a model at all: XGBoost quotes them, nfcal escapes what is not ASCII.
  try {
    XGBoostClassifier::from_bytes(std::string("\xa2\x01\xff garbage", 11));
    FAIL() << "garbage was accepted";
  } catch (const XGBoostError& e) {
    for (const char c : std::string(e.what())) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << static_cast<int>(c) << " in " << e.what();
    }
  }
}

TEST(XGBoostClassifier, BadParametersAndDataAreRejectedByName) {
  const Matrix<float> data = gaussian_rows(100, 2, 1.0f, 16);
  const Matrix<float> flow = gaussian_rows(100, 2, 0.0f, 17);

  XGBoostParams p = small_params();
  p.learning_rate = 0;
  try {
    XGBoostClassifier::train(data, flow, p);
    FAIL() << "learning_rate 0 was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("learning_rate"), std::string::npos);
  }

  // Parallel trees need a subsample to differ.
  p = small_params();
  p.parallel_trees = 0;
  EXPECT_THROW(XGBoostClassifier::train(data, flow, p), InvalidArgument);
  p.parallel_trees = 3;
  try {
    XGBoostClassifier::train(data, flow, p);
    FAIL() << "three equal parallel trees were accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("parallel_trees"), std::string::npos) << e.what();
  }
  p.colsample = 0.5;
  EXPECT_NO_THROW(XGBoostClassifier::train(data, flow, p));

  p = small_params();
  p.device = "tpu";
  EXPECT_THROW(XGBoostClassifier::train(data, flow, p), InvalidArgument);

  p = small_params();
  p.threads = kMaxThreads + 1;
  try {
    XGBoostClassifier::train(data, flow, p);
    FAIL() << "a thread count beyond kMaxThreads was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("threads"), std::string::npos) << e.what();
  }

  EXPECT_THROW(XGBoostClassifier::train(data, gaussian_rows(100, 3, 0.0f, 18), small_params()),
               DataError);

  Matrix<float> with_nan = data;
  with_nan(5, 1) = std::nanf("");
  EXPECT_THROW(XGBoostClassifier::train(with_nan, flow, small_params()), DataError);
}

TEST(XGBoostClassifier, ParamsSerializeEveryTunedField) {
  XGBoostParams p;
  p.trees = 77;
  p.lambda = 2.5;
  p.parallel_trees = 4;
  const std::string json = p.to_json();
  EXPECT_NE(json.find("\"trees\":77"), std::string::npos) << json;
  EXPECT_NE(json.find("\"lambda\":2.5"), std::string::npos) << json;
  EXPECT_NE(json.find("\"parallel_trees\":4"), std::string::npos) << json;
  EXPECT_NE(json.find("\"early_stopping_rounds\""), std::string::npos) << json;
}

}  // namespace
}  // namespace nfcal
