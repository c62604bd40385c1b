// The classifier interface's shared pieces and the callback classifier.
#include "nfcal/classifier.hpp"

#include <cmath>
#include <utility>

#include "nfcal/error.hpp"

namespace nfcal {

std::vector<float> Classifier::margins(const Matrix<float>& x) const {
  // A column count other than the classifier's is a caller error worth naming.
  if (x.cols() != static_cast<std::size_t>(num_features())) {
    throw DataError(name() + ": rows have " + std::to_string(x.cols()) +
                    " columns, the classifier expects " + std::to_string(num_features()));
  }
  std::vector<float> out(x.rows());
  if (x.rows() > 0) margins(x.data(), x.rows(), out.data());
  return out;
}

void check_margins(const float* margins, std::size_t n, const std::string& who) {
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(margins[i])) {
      throw DataError(who + " returned a NaN margin for row " + std::to_string(i) +
                      " of a batch of " + std::to_string(n));
    }
  }
}

CallbackClassifier::CallbackClassifier(int dim, Function function, double balance, std::string name)
    : dim_(dim), function_(std::move(function)), balance_(balance), name_(std::move(name)) {
  if (dim_ < 1) throw InvalidArgument("CallbackClassifier: dim must be >= 1");
  if (!function_) throw InvalidArgument("CallbackClassifier: the function is empty");
  if (!std::isfinite(balance_)) throw InvalidArgument("CallbackClassifier: balance not finite");
}

void CallbackClassifier::margins(const float* x, std::size_t n, float* out) const {
  // User code may return anything: NaN would poison log Z and the accept test silently.
  if (n == 0) return;
  function_(x, n, dim_, out);
  check_margins(out, n, "classifier '" + name_ + "'");

  // Remove the class-balance term the callable was trained with.
  if (balance_ != 0.0) {
    const float balance = static_cast<float>(balance_);
    for (std::size_t i = 0; i < n; ++i) out[i] -= balance;
  }
}

}  // namespace nfcal
