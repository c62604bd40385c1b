// Shared pieces of the calibration tests: a flow that is an exact broad Gaussian, the exact log
// density ratio of a known Gaussian target to it as a callback classifier, and a
// Kolmogorov-Smirnov distance.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/classifier.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/rejection_sampler.hpp"

namespace nfcal::testing {

// A fresh MAF is the identity on N(0, I); a standardization with scale s makes it exactly
// N(0, s^2 I) in the user's units.
inline Maf broad_gaussian_flow(int dim, double scale) {
  MafConfig config;
  config.dim = dim;
  config.layers = 2;
  config.hidden = 8;
  config.hidden_layers = 1;
  Maf flow(config);
  Standardization s;
  s.shift.assign(dim, 0.0);
  s.scale.assign(dim, scale);
  flow.set_standardization(s);
  return flow;
}

// log N(x; mean, sd^2), one coordinate.
inline double log_normal(double x, double mean, double sd) {
  const double z = (x - mean) / sd;
  return -0.5 * z * z - std::log(sd) - 0.91893853320467274178;  // log sqrt(2 pi)
}

// A diagonal Gaussian target Q against the flow N(0, s^2 I).
struct GaussianTarget {
  std::vector<double> mean, sd;
  double flow_scale = 2.0;

  double log_q(const float* x) const {
    double sum = 0;
    for (std::size_t d = 0; d < mean.size(); ++d) sum += log_normal(x[d], mean[d], sd[d]);
    return sum;
  }
  double log_p(const float* x) const {
    double sum = 0;
    for (std::size_t d = 0; d < mean.size(); ++d) sum += log_normal(x[d], 0.0, flow_scale);
    return sum;
  }
  // sup_x log q/p, finite because every sd is below the flow's scale.
  double max_log_ratio() const {
    double sum = 0;
    for (std::size_t d = 0; d < mean.size(); ++d) {
      const double a = 1.0 / (sd[d] * sd[d]), b = 1.0 / (flow_scale * flow_scale);
      const double x = mean[d] * a / (a - b);
      sum += log_normal(x, mean[d], sd[d]) - log_normal(x, 0.0, flow_scale);
    }
    return sum;
  }
  // The exact log ratio as a classifier.
  std::shared_ptr<CallbackClassifier> classifier() const {
    const GaussianTarget self = *this;
    const int dim = static_cast<int>(mean.size());
    return std::make_shared<CallbackClassifier>(
        dim,
        [self](const float* x, std::size_t n, int d, float* out) {
          for (std::size_t i = 0; i < n; ++i) {
            out[i] = static_cast<float>(self.log_q(x + i * d) - self.log_p(x + i * d));
          }
        },
        0.0, "exact log ratio");
  }
  // n exact draws of the target: rejection from the flow N(0, flow_scale^2 I) with the exact
  // ratio as the classifier, candidates keyed by seed.
  Matrix<float> draws(std::size_t n, std::uint64_t seed) const {
    const CalibratedFlow exact(broad_gaussian_flow(static_cast<int>(mean.size()), flow_scale),
                               classifier(), std::numeric_limits<double>::infinity(),
                               LogZEstimate{}, max_log_ratio() + 0.01);
    SamplerOptions options;
    options.seed = seed;
    return sample_calibrated(exact, n, options);
  }
};

// Calibration options small enough for tests: 40 trees of depth 3 on 2 threads, log Z on
// 20,000 flow samples, and the given ceiling.
inline CalibrationOptions quick_calibration_options(CeilingChoice ceiling) {
  CalibrationOptions options;
  options.classifier.trees = 40;
  options.classifier.max_depth = 3;
  options.classifier.threads = 2;
  options.log_z_samples = 20000;
  options.ceiling = ceiling;
  return options;
}

// A callback returning the same margin for every row.
inline std::shared_ptr<CallbackClassifier> constant_classifier(int dim, float margin) {
  return std::make_shared<CallbackClassifier>(
      dim,
      [margin](const float*, std::size_t n, int, float* out) { std::fill(out, out + n, margin); });
}

// sup |F_n - F| of column `col` of x against the cdf F.
inline double ks_distance(const Matrix<float>& x, int col,
                          const std::function<double(double)>& cdf) {
  std::vector<double> v(x.rows());
  for (std::size_t i = 0; i < x.rows(); ++i) v[i] = x(i, col);
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  double d = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double f = cdf(v[i]);
    d = std::max({d, std::abs(f - i / n), std::abs((i + 1) / n - f)});
  }
  return d;
}

inline double normal_cdf(double x, double mean, double sd) {
  return 0.5 * std::erfc(-(x - mean) / (sd * std::sqrt(2.0)));
}

// Kolmogorov-Smirnov critical distance at level 0.001 for n samples.
inline double ks_critical(std::size_t n) { return 1.95 / std::sqrt(static_cast<double>(n)); }

// Column mean and variance.
inline std::pair<double, double> column_moments(const Matrix<float>& x, int col) {
  double sum = 0, sum_sq = 0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    sum += x(i, col);
    sum_sq += static_cast<double>(x(i, col)) * x(i, col);
  }
  const double n = static_cast<double>(x.rows());
  const double mean = sum / n;
  return {mean, sum_sq / n - mean * mean};
}

}  // namespace nfcal::testing
