// The arithmetic of calibration shared by the CPU backend and the CUDA kernels: the clipped
// margin, the rejection test, and the streaming pieces of a numerically stable log-mean-exp.
//
// With the classifier's margin m(x) (class balance already removed) and a ceiling L, the
// calibrated density is Q_L(x) = P(x) exp(min(m(x), L)) / Z_L. A candidate x ~ P is accepted
// when log u < min(m(x), L) - L with u ~ U(0, 1); accepted points are exact draws from Q_L and
// the acceptance rate is Z_L / exp(L). L may be +infinity (no clipping); the sampler then
// passes a finite bound in its place.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.hpp"
#include "common/philox.hpp"

namespace nfcal::calib {

/// min(margin - balance, ceiling): the margin with the class-balance term removed, clipped.
/// ceiling may be +infinity. A NaN margin stays NaN (callers check for it).
NFCAL_HD float clipped_margin(float margin, float balance, float ceiling) {
  const float centred = margin - balance;
  if (centred != centred) return centred;
  return centred < ceiling ? centred : ceiling;
}

/// The rejection test: true when log_u < clipped - ceiling. ceiling must be finite.
NFCAL_HD bool accept(double log_u, double clipped, double ceiling) {
  return log_u < clipped - ceiling;
}

/// The rejection test of candidate `index`, its uniform keyed by (seed, index) in the
/// accept stream, so the decision does not depend on how candidates are batched. The test
/// runs in double: the device's logf and glibc's may differ in the last bit, which in float
/// would flip a decision somewhere in every few million candidates.
NFCAL_HD bool accept_candidate(std::uint64_t seed, std::uint64_t index, float clipped,
                               float ceiling) {
  const float u = rng::keyed_uniform(seed, index, rng::kStreamAccept);
  return accept(log(static_cast<double>(u)), clipped, ceiling);
}

/// A running log-sum-exp: log of sum exp(v) over the values folded in, kept as a maximum and
/// a sum of exp(v - maximum), so no term overflows. Also tracks the sum of squares of the
/// weights, which the standard error and the effective sample size need.
struct LogSumExp {
  double max = -INFINITY;  // largest value folded in
  double sum = 0;          // sum of exp(v - max)
  double sum_sq = 0;       // sum of exp(2 (v - max))
  std::uint64_t count = 0;

  /// Folds in one value; -infinity is a weight of zero, which counts but adds nothing.
  NFCAL_HD void add(double v) {
    ++count;
    if (v == -INFINITY) return;  // exp(v - max) would be NaN while max is still -infinity
    if (v > max) {
      const double shift = exp(max - v);  // exp(-inf) = 0 on the first value
      sum = sum * shift + 1.0;
      sum_sq = sum_sq * shift * shift + 1.0;
      max = v;
    } else {
      const double w = exp(v - max);
      sum += w;
      sum_sq += w * w;
    }
  }

  /// Folds in another partial result (from another thread or block).
  NFCAL_HD void merge(const LogSumExp& other) {
    if (other.count == 0) return;
    if (sum == 0 || other.sum == 0) {  // a side of zero weights only (or none) adds its count
      const std::uint64_t total = count + other.count;
      if (sum == 0) *this = other;
      count = total;
      return;
    }
    const double top = max > other.max ? max : other.max;
    const double a = exp(max - top);
    const double b = exp(other.max - top);
    sum = sum * a + other.sum * b;
    sum_sq = sum_sq * a * a + other.sum_sq * b * b;
    max = top;
    count += other.count;
  }

  /// log of the mean of exp(v).
  NFCAL_HD double log_mean_exp() const { return max + log(sum) - log(static_cast<double>(count)); }

  /// Effective sample size of the weights exp(v): (sum w)^2 / sum w^2.
  NFCAL_HD double effective_sample_size() const { return sum > 0 ? sum * sum / sum_sq : 0.0; }

  /// Standard error of log_mean_exp() by the delta method: sd(w) / (sqrt(n) mean(w)), with
  /// the unbiased sample variance of the weights.
  NFCAL_HD double log_mean_exp_se() const {
    const double n = static_cast<double>(count);
    if (count < 2 || sum == 0) return INFINITY;
    const double mean = sum / n;
    double variance = (sum_sq - n * mean * mean) / (n - 1.0);
    if (variance < 0) variance = 0;
    return sqrt(variance / n) / mean;
  }
};

}  // namespace nfcal::calib
