// Metrics of a flow or a calibrated flow on a test set (docs/calibration.md): test
// log-likelihood of both models and the gain between them, classifier AUC and log-loss, log Z,
// the ceiling, predicted and measured acceptance, the effective sample size, and, where the
// true density of the test rows is known, the share of the flow's gap to it that calibration
// closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal {

/// A mean over rows with its standard error (NaN when it does not apply).
struct Estimate {
  double mean = std::numeric_limits<double>::quiet_NaN();
  double se = std::numeric_limits<double>::quiet_NaN();
};

/// Mean and standard error of the mean (se 0 for one value, both NaN for none).
Estimate estimate_mean(const std::vector<double>& values);

/// The share of the flow's gap to the true density that a model closes on the same rows,
/// sum(model - flow) / sum(truth - flow), with the delta-method standard error of a ratio of
/// means (the rows are the sampling unit). Both NaN when the vectors are empty or of different
/// sizes, or when the flow is not below the truth on average.
Estimate gap_share(const std::vector<double>& flow, const std::vector<double>& model,
                   const std::vector<double>& truth);

struct EvaluateOptions {
  std::uint64_t seed = 0;                  // flow rows for AUC/log-loss and the sampling run
  std::size_t acceptance_samples = 10000;  // accepted samples drawn to measure acceptance;
                                           // 0 skips the sampling run
  std::size_t max_candidates = 0;          // cap of that run (0: the sampler's default)
  // The true log density of each test row in nats, when the data come from a known density
  // (empty: unknown). It adds the true log-likelihood and the share of the gap closed.
  std::vector<double> true_log_density;
};

/// Every number is in nats; a number that does not apply (a plain flow has no classifier, an
/// infinite ceiling, a skipped sampling run) is NaN and becomes null in JSON.
struct Evaluation {
  std::size_t test_rows = 0;
  bool calibrated = false;
  double flow_log_likelihood = 0, flow_log_likelihood_se = 0;
  double calibrated_log_likelihood = 0, calibrated_log_likelihood_se = 0;
  double gain = 0, gain_se = 0;  // calibrated minus flow row by row (0 for a plain flow)
  double auc = 0;                // test rows against as many fresh flow samples, unclipped margins
  double log_loss = 0;           // mean binary cross-entropy of sigmoid(margin) on those rows
  double log_z = 0, log_z_se = 0;
  double ceiling = 0;  // the model's L (NaN without a ceiling)
  double acceptance_predicted = 0, acceptance_measured = 0;
  double ess = 0;
  // With EvaluateOptions::true_log_density: the truth's test log-likelihood, and the share of
  // the flow's gap to it that the calibrated model closes (gap_share; NaN for a plain flow).
  bool truth_known = false;
  double true_log_likelihood = 0, true_log_likelihood_se = 0;
  double gap_closed = 0, gap_closed_se = 0;
  std::string note;  // e.g. why acceptance could not be measured

  /// A JSON object with exactly the keys flow_log_likelihood, flow_log_likelihood_se,
  /// calibrated_log_likelihood, calibrated_log_likelihood_se, auc, log_loss, log_z, log_z_se,
  /// ceiling, acceptance_predicted, acceptance_measured, ess (NaN as null); when the truth is
  /// known also true_log_likelihood, true_log_likelihood_se, gap_closed and gap_closed_se.
  std::string to_json() const;
  /// A readable two-column table.
  std::string to_table() const;
};

/// Evaluates model on test rows (n, D). Throws DataError when test has no rows, the wrong
/// column count or a NaN/Inf, or when options.true_log_density is given with another number
/// of values than test rows or with a value that is not finite (naming the row). A sampling
/// run that hits its cap is reported in note (with the measured rate), not thrown.
Evaluation evaluate(const AnyModel& model, const Matrix<float>& test,
                    const EvaluateOptions& options = {});

/// A log density known in closed form: one value (nats) per row of x (n, D).
using LogDensityFunction = std::function<std::vector<double>(const Matrix<double>& x)>;

/// The calibrated model a perfect classifier would make of a flow: its margin is the exact log
/// density ratio log p(x) - log P(x) to the known density p the data come from, clipped at the
/// given ceiling (+infinity: none) and normalized by log Z on fresh flow samples. Its test
/// log-likelihood is the most any classifier can reach with that flow and ceiling, which tells
/// what the ceiling costs apart from what the classifier misses (docs/calibration.md).
struct ExactRatioReference {
  std::vector<double> log_prob;                      // per test row, nats
  double log_likelihood = 0, log_likelihood_se = 0;  // their mean and its standard error
  double log_z = 0, log_z_se = 0;
};

/// The reference on test rows (n, D), log Z from `samples` flow samples drawn with `seed`.
/// log_density may return -infinity where p vanishes. Throws DataError when test has no rows,
/// the wrong column count or a NaN/Inf, and InvalidArgument when log_density is empty, returns
/// the wrong number of values, or samples is 0, or when no flow sample lands where the known
/// density is positive (log Z would be minus infinity).
ExactRatioReference exact_ratio_reference(const Maf& flow, const LogDensityFunction& log_density,
                                          const Matrix<float>& test, double ceiling,
                                          std::size_t samples, std::uint64_t seed);

/// Area under the ROC curve of scores for positives against negatives (ties count one half).
double area_under_curve(const std::vector<float>& positives, const std::vector<float>& negatives);

}  // namespace nfcal
