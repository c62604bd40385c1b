// A flow calibrated by a classifier (docs/calibration.md):
//
//     log Q_L(x) = log P(x) + min(m(x), L) - log Z_L,    Z_L = E_{x~P}[exp(min(m(x), L))]
//
// where m is the classifier's margin with the class balance removed and L the ceiling (finite,
// or +infinity for no clipping). log Z_L is a Monte Carlo estimate on fresh flow samples and
// carries its standard error. calibrate() trains the classifier, chooses the number of trees
// and the ceiling on held-out rows, and estimates log Z; the model saves to one bundle file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nfcal/classifier.hpp"
#include "nfcal/device.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/rejection_sampler.hpp"
#include "nfcal/xgboost_classifier.hpp"

namespace nfcal {

/// The kind a calibrated model's bundle carries in its header.
inline constexpr const char* kCalibratedKind = "calibrated";

/// What the classifier sees of a row x (docs/calibration.md, "Classifier input").
enum class ClassifierInput {
  kData,           // x alone: D features
  kDataAndLatent,  // x and its base coordinates u = f(x) under the flow: 2 D features
};

/// "data" or "data+latent".
std::string to_string(ClassifierInput input);
/// Parses to_string()'s names. Throws InvalidArgument naming the text otherwise.
ClassifierInput parse_classifier_input(const std::string& text);
/// Columns the classifier takes for a flow of dimension dim.
int classifier_feature_count(ClassifierInput input, int dim);
/// The classifier's rows (n, classifier_feature_count()) for rows x (n, dim) whose base
/// coordinates are u (n, dim); u is not read for kData.
Matrix<float> classifier_features(ClassifierInput input, const float* x, const float* u,
                                  std::size_t n, int dim);
/// The classifier's rows for any rows x (n, dim): their base coordinates come from the flow's
/// forward map.
Matrix<float> classifier_features_of_rows(ClassifierInput input, const Maf& flow, const float* x,
                                          std::size_t n);
/// The classifier's rows for flow samples x (n, dim) drawn by Maf::sample(n, seed, first_row):
/// their base coordinates are the keyed noise they came from.
Matrix<float> classifier_features_of_samples(ClassifierInput input, Matrix<float> x,
                                             std::uint64_t seed, std::uint64_t first_row = 0);

/// How the ceiling L is chosen.
struct CeilingChoice {
  enum class Mode {
    kValue,             // L = value
    kAuto,              // the best held-out gain over a grid of finite ceilings
    kNone,              // L = +infinity; sampling uses an estimated bound (approximate)
    kTargetAcceptance,  // L solving Z_L / exp(L) = value on the log Z samples
  };
  Mode mode = Mode::kAuto;
  double value = 0;

  static CeilingChoice fixed(double ceiling) { return {Mode::kValue, ceiling}; }
  static CeilingChoice automatic() { return {Mode::kAuto, 0}; }
  static CeilingChoice none() { return {Mode::kNone, 0}; }
  static CeilingChoice target_acceptance(double rate) { return {Mode::kTargetAcceptance, rate}; }
  /// Parses "auto", "none" or a number (the ceiling in nats). Throws InvalidArgument naming
  /// the text otherwise.
  static CeilingChoice parse(const std::string& text);
  std::string to_string() const;
};

/// The largest flow_ratio calibrate() takes: far more flow rows per data row than ever pays,
/// and small enough that the flow row count stays an exact integer.
inline constexpr double kMaxFlowRatio = 1e6;

struct CalibrationOptions {
  XGBoostParams classifier;  // its seed also drives the held-out split
  // Flow rows per data row, n0 / n1. Flow rows cost one sampling pass each while data rows are
  // scarce; four of them per data row let the trees see the flow's side sharply (see
  // docs/calibration.md). At most kMaxFlowRatio.
  double flow_ratio = 4.0;
  // The flow's base coordinates next to the data double the axes the trees can split on and
  // close more of the gap to the truth on every benchmark (docs/calibration.md).
  ClassifierInput classifier_input = ClassifierInput::kDataAndLatent;
  CeilingChoice ceiling;                                                       // default: auto
  std::vector<double> ceiling_grid{0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0};  // for auto
  double auto_min_acceptance = 0.05;  // auto skips ceilings predicted to accept less
  double bound_slack = 0.1;           // no ceiling: bound = max sampled margin + this
  std::size_t log_z_samples = 0;      // fresh flow samples for log Z; 0: by device (below)
  std::uint64_t seed = 0;             // the flow samples for training and for log Z
  Device device = Device::cpu();      // where the flow samples are drawn (the same rows)
  RoundCallback on_classifier_round = nullptr;  // after each boosting round, for progress displays

  /// Throws InvalidArgument naming the first field out of range.
  void validate() const;
  /// log_z_samples, or when it is 0 the default of the device: 100,000 flow samples on the
  /// CPU, 1,000,000 on a GPU, where they cost little next to the classifier's training.
  std::size_t resolved_log_z_samples() const;
};

/// What calibration did, for logs and reports.
struct CalibrationReport {
  XGBoostTrainReport classifier;
  ClassifierInput classifier_input = ClassifierInput::kData;
  double ceiling = 0;                                    // the chosen L (may be +infinity)
  std::vector<std::pair<double, double>> ceiling_gains;  // auto: (L, held-out gain) per grid L
  double heldout_flow_log_likelihood = 0;                // mean over held-out data rows, nats
  double heldout_calibrated_log_likelihood = 0;          // the same for the calibrated model
  double heldout_gain = 0;                               // calibrated minus flow, nats per row
  double heldout_gain_se = 0;                            // its standard error
  bool improved = false;                                 // heldout_gain > 0
  bool flow_unchanged = false;  // auto without a gain: L below every margin, the model = flow
  LogZEstimate log_z;
  double acceptance_predicted = 0;
  bool exact_sampling = true;
  double seconds_flow_samples = 0, seconds_classifier = 0, seconds_log_z = 0;

  /// Doubts about the result, one sentence each: no held-out gain, a gain within two standard
  /// errors of zero, fewer than 100 held-out data rows, or a predicted acceptance too low to
  /// sample affordably. Empty when none.
  std::vector<std::string> warnings() const;
  /// Human-readable lines, ending with the warnings.
  std::string summary() const;
  /// The same as a JSON object, for scripts: the classifier's rows and trees, the ceiling with
  /// the held-out gain of every grid value tried, the held-out log-likelihoods and gain, log Z,
  /// the predicted acceptance, the seconds of each step and the warnings (docs/calibration.md
  /// lists the keys). An infinite ceiling is null.
  std::string to_json() const;
};

/// A flow, a classifier, a ceiling and log Z: a normalized density that can be sampled
/// exactly (finite ceiling) by rejection. Copies share the classifier. Thread-safe for
/// log_prob and sampling.
class CalibratedFlow {
 public:
  /// Throws InvalidArgument when the classifier is null or its feature count does not match
  /// the flow's dimension under `input`, when log Z is not finite, or when the ceiling is NaN.
  /// sampling_bound is required (finite) when ceiling is +infinity and ignored otherwise.
  CalibratedFlow(Maf flow, std::shared_ptr<const Classifier> classifier, double ceiling,
                 LogZEstimate log_z, double sampling_bound = 0, std::string metadata_json = "{}",
                 ClassifierInput input = ClassifierInput::kData);

  const Maf& flow() const { return flow_; }
  const Classifier& classifier() const { return *classifier_; }
  std::shared_ptr<const Classifier> classifier_ptr() const { return classifier_; }
  ClassifierInput classifier_input() const { return input_; }
  int dim() const { return flow_.dim(); }

  double ceiling() const { return ceiling_; }                // may be +infinity
  bool exact_sampling() const;                               // ceiling is finite
  double sampling_bound() const { return sampling_bound_; }  // L of the accept test
  double log_z() const { return log_z_.log_z; }
  double log_z_se() const { return log_z_.se; }
  double ess() const { return log_z_.ess; }
  const LogZEstimate& log_z_estimate() const { return log_z_; }
  /// Z_L / exp(bound): the predicted acceptance rate of the rejection sampler.
  double acceptance_predicted() const;
  /// Training metadata, a JSON object.
  const std::string& metadata_json() const { return metadata_json_; }

  /// What the classifier scores of n rows x (n, D): the rows and, for latent input, their
  /// base coordinates u (n, D), given when known (flow samples) or nullptr to map x through
  /// the flow. (n, classifier_feature_count()) values.
  Matrix<float> classifier_rows(const float* x, std::size_t n, const float* u = nullptr) const;

  /// The classifier's margins of n rows x (n, D) into out (n), scored on classifier_rows(x, n,
  /// u). Throws DataError when a margin is NaN.
  void margins(const float* x, std::size_t n, float* out, const float* u = nullptr) const;
  /// The same for a matrix of dim() columns.
  std::vector<float> margins(const Matrix<float>& x) const;

  /// Log densities (nats) of n rows x (n, D) into out (n): flow log density + clipped margin
  /// - log Z. Throws DataError when the classifier returns NaN.
  void log_prob(const float* x, std::size_t n, float* out) const;
  /// The same for a matrix; throws DataError when it has not dim() columns.
  std::vector<float> log_prob(const Matrix<float>& x) const;

  /// The bundle as a model file of kind "calibrated": sections "flow" (a flow model file's
  /// bytes) and "classifier" (XGBoost UBJSON), header with ceiling, bound, log Z, its error,
  /// ESS and the metadata. Throws InvalidArgument when the classifier is not an
  /// XGBoostClassifier (a user callback cannot be stored).
  ModelFile encode() const;
  /// Rebuilds a model from encode()'s file. Throws ModelFormatError naming the source and the
  /// field or section at fault, including a classifier whose feature count differs from the
  /// flow's dimension. threads and device set the classifier's runtime.
  static CalibratedFlow decode(const ModelFile& file, int threads = 0,
                               const std::string& device = "cpu");
  /// Writes encode() to path atomically.
  void save(const std::string& path) const;
  static CalibratedFlow load(const std::string& path, int threads = 0,
                             const std::string& device = "cpu");

 private:
  Maf flow_;
  std::shared_ptr<const Classifier> classifier_;
  double ceiling_;
  double sampling_bound_;
  LogZEstimate log_z_;
  std::string metadata_json_;
  ClassifierInput input_;
};

/// Calibrates flow on data rows (n1, D): samples n0 = flow_ratio * n1 flow rows, trains an
/// XGBoost classifier with held-out tree selection, chooses the ceiling, and estimates log Z
/// on log_z_samples fresh flow samples. The trees and the ceiling are chosen on held-out
/// rows: the given validation rows (n2, D) against flow_ratio * n2 flow rows of their own, or,
/// without them, a validation_fraction of the data and flow rows. Throws DataError on bad
/// data, InvalidArgument on bad options, XGBoostError when XGBoost fails.
///
///     nfcal::CalibrationReport report;
///     nfcal::CalibratedFlow model = nfcal::calibrate(flow, train, {}, &report);
///     std::cout << report.summary();
CalibratedFlow calibrate(const Maf& flow, const Matrix<float>& data,
                         const CalibrationOptions& options = {},
                         CalibrationReport* report = nullptr,
                         const Matrix<float>* validation = nullptr);

/// log Z_L of a flow and a classifier on `samples` fresh flow samples keyed by seed.
LogZEstimate estimate_flow_log_z(const Maf& flow, const Classifier& classifier, double ceiling,
                                 std::size_t samples, std::uint64_t seed,
                                 ClassifierInput input = ClassifierInput::kData);

/// The ceiling L with Z_L / exp(L) = rate on the given margins of flow samples, rate in (0, 1].
/// Throws InvalidArgument when rate is outside (0, 1] or margins is empty.
double ceiling_for_acceptance(const std::vector<float>& margins, double rate);

/// Either a flow or a calibrated flow, as load_model() finds it; what `nfcal sample` and
/// `nfcal score` work on.
class AnyModel {
 public:
  explicit AnyModel(Maf flow);
  explicit AnyModel(CalibratedFlow model);

  bool is_calibrated() const { return calibrated_ != nullptr; }
  /// "flow" or "calibrated".
  std::string kind() const;
  const Maf& flow() const;
  /// The calibrated model; nullptr for a plain flow.
  const CalibratedFlow* calibrated() const { return calibrated_.get(); }
  int dim() const { return flow().dim(); }

  /// Log densities (nats) of every row of x, on the CPU or a CUDA device (nfcal/compute.hpp).
  /// Throws DataError on a column mismatch.
  std::vector<float> log_prob(const Matrix<float>& x, const Device& device = Device::cpu()) const;
  /// n draws keyed by options.seed, on options.device: the flow's own sampler, or rejection
  /// for a calibrated model (report filled for a calibrated model only).
  Matrix<float> sample(std::size_t n, const SamplerOptions& options = {},
                       SamplerReport* report = nullptr) const;

 private:
  std::shared_ptr<const Maf> flow_;
  std::shared_ptr<const CalibratedFlow> calibrated_;
};

/// Loads a model file of kind "flow" or "calibrated". Throws FileError when it cannot be read,
/// ModelFormatError when it is neither kind or fails validation.
AnyModel load_model(const std::string& path, int threads = 0, const std::string& device = "cpu");

}  // namespace nfcal
