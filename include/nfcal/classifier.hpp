// The classifier interface of calibration: any function that maps rows to raw margins (log
// odds of "data" against "flow sample") can calibrate a flow. nfcal ships two implementations:
// XGBoostClassifier (xgboost_classifier.hpp) and CallbackClassifier, which wraps user code.
//
// Margins are always returned with the class-balance term log(n1 / n0) already removed, so a
// classifier that cannot tell data from flow samples returns 0 everywhere, whatever the ratio
// of the two classes it was trained on.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

namespace nfcal {

/// A trained binary classifier of data (label 1) against flow samples (label 0).
/// Implementations must be safe to call from several threads at once for prediction.
class Classifier {
 public:
  virtual ~Classifier() = default;

  /// The number of columns of the rows it scores.
  virtual int num_features() const = 0;

  /// Raw margins of n rows x (n, num_features()) into out (n), class balance removed:
  /// log Q(x) / P(x) as far as the classifier has learned it. Throws DataError when the
  /// classifier returns a NaN (naming the row), or the implementation's own error; a
  /// CalibratedFlow checks for NaN itself, so an implementation that does not is still safe.
  virtual void margins(const float* x, std::size_t n, float* out) const = 0;

  /// A short description for reports, e.g. "xgboost (312 trees)".
  virtual std::string name() const = 0;

  /// Margins of every row of x. Throws DataError when x has not num_features() columns.
  std::vector<float> margins(const Matrix<float>& x) const;
};

/// User code as a classifier: a callable that writes the raw margins of a batch of rows.
/// The callable receives (rows (n, dim), n, dim, out (n)) and must be thread-safe when the
/// classifier is used from several threads. `balance` is subtracted from what it returns,
/// so a callable trained with n1 data and n0 flow rows can pass log(n1 / n0) here.
///
///     auto clf = std::make_shared<nfcal::CallbackClassifier>(
///         2, [](const float* x, std::size_t n, int dim, float* out) {
///           for (std::size_t i = 0; i < n; ++i) out[i] = my_logit(x + i * dim);
///         });
class CallbackClassifier : public Classifier {
 public:
  using Function = std::function<void(const float* x, std::size_t n, int dim, float* out)>;

  /// Throws InvalidArgument when dim < 1 or function is empty.
  CallbackClassifier(int dim, Function function, double balance = 0.0,
                     std::string name = "callback");

  int num_features() const override { return dim_; }
  /// Calls the function, subtracts the balance, and throws DataError naming the first row
  /// whose margin is NaN.
  void margins(const float* x, std::size_t n, float* out) const override;
  using Classifier::margins;
  std::string name() const override { return name_; }

 private:
  int dim_;
  Function function_;
  double balance_;
  std::string name_;
};

/// Throws DataError naming the first row whose margin is NaN; `who` names the classifier.
void check_margins(const float* margins, std::size_t n, const std::string& who);

/// Monte Carlo estimate of log Z_L = log E_{x~P}[exp(min(m(x), L))] from margins of fresh
/// flow samples, by a log-mean-exp that cannot overflow.
struct LogZEstimate {
  double log_z = 0;  // log of the sample mean of w = exp(min(m, L))
  double se = 0;     // delta-method standard error: sd(w) / (sqrt(n) mean(w))
  double ess = 0;    // effective sample size (sum w)^2 / sum w^2
  std::size_t samples = 0;
  double max_margin = 0;  // largest unclipped margin seen
};

/// log Z_L from n margins; ceiling may be +infinity. Throws InvalidArgument when n == 0 and
/// DataError naming the first NaN margin.
LogZEstimate estimate_log_z(const float* margins, std::size_t n, double ceiling);

/// Held-out gain of the calibrated model over the flow, in nats per row:
///     mean over data rows of min(m, L)  -  log mean over flow rows of exp(min(m, L)).
/// The first term is the calibrated log-likelihood minus the flow's on held-out data (the flow's
/// own log density cancels); the second is log Z_L estimated on held-out flow samples. Positive
/// when calibration helps. Throws InvalidArgument when either vector is empty.
double heldout_gain(const std::vector<float>& data_margins, const std::vector<float>& flow_margins,
                    double ceiling);

}  // namespace nfcal
