// Metrics of a flow or a calibrated flow on a test set (docs/calibration.md): test
// log-likelihood of both models, classifier AUC and log-loss, log Z, the ceiling, predicted and
// measured acceptance, and the effective sample size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal {

struct EvaluateOptions {
  std::uint64_t seed = 0;                  // flow rows for AUC/log-loss and the sampling run
  std::size_t acceptance_samples = 10000;  // accepted samples drawn to measure acceptance;
                                           // 0 skips the sampling run
  std::size_t max_candidates = 0;          // cap of that run (0: the sampler's default)
};

/// Every number is in nats; a number that does not apply (a plain flow has no classifier, an
/// infinite ceiling, a skipped sampling run) is NaN and becomes null in JSON.
struct Evaluation {
  std::size_t test_rows = 0;
  bool calibrated = false;
  double flow_log_likelihood = 0, flow_log_likelihood_se = 0;
  double calibrated_log_likelihood = 0, calibrated_log_likelihood_se = 0;
  double auc = 0;       // test rows against as many fresh flow samples, unclipped margins
  double log_loss = 0;  // mean binary cross-entropy of sigmoid(margin) on those rows
  double log_z = 0, log_z_se = 0;
  double ceiling = 0;  // the model's L (NaN without a ceiling)
  double acceptance_predicted = 0, acceptance_measured = 0;
  double ess = 0;
  std::string note;  // e.g. why acceptance could not be measured

  /// A JSON object with exactly the keys flow_log_likelihood, flow_log_likelihood_se,
  /// calibrated_log_likelihood, calibrated_log_likelihood_se, auc, log_loss, log_z, log_z_se,
  /// ceiling, acceptance_predicted, acceptance_measured, ess (NaN as null).
  std::string to_json() const;
  /// A readable two-column table.
  std::string to_table() const;
};

/// Evaluates model on test rows (n, D). Throws DataError when test has no rows, the wrong
/// column count or a NaN/Inf. A sampling run that hits its cap is reported in note (with the
/// measured rate), not thrown.
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
