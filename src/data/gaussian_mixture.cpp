// Gaussian mixtures with full covariances: exact sampling and log densities via Cholesky.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "nfcal/datasets.hpp"
#include "nfcal/error.hpp"

#include "data/row_random.hpp"

namespace nfcal {
namespace {

constexpr double kLogTwoPi = 1.8378770664093454836;

// The lower Cholesky factor of a symmetric positive definite matrix, or an error naming the
// component when it is not one.
Matrix<double> cholesky(const Matrix<double>& a, std::size_t component) {
  const std::size_t n = a.rows();
  Matrix<double> l(n, n);
  for (std::size_t j = 0; j < n; ++j) {
    double diagonal = a(j, j);
    for (std::size_t k = 0; k < j; ++k) diagonal -= l(j, k) * l(j, k);
    if (!(diagonal > 0)) {
      throw InvalidArgument("Gaussian mixture: covariance " + std::to_string(component) +
                            " is not positive definite");
    }
    l(j, j) = std::sqrt(diagonal);
    for (std::size_t i = j + 1; i < n; ++i) {
      double sum = a(i, j);
      for (std::size_t k = 0; k < j; ++k) sum -= l(i, k) * l(j, k);
      l(i, j) = sum / l(j, j);
    }
  }
  return l;
}

// Checks sizes and symmetry of one component's parameters.
void check_component(const std::vector<double>& mean, const Matrix<double>& covariance,
                     double weight, std::size_t dim, std::size_t k) {
  const std::string which = "Gaussian mixture: component " + std::to_string(k);
  if (mean.size() != dim) throw InvalidArgument(which + ": mean has the wrong dimension");
  if (covariance.rows() != dim || covariance.cols() != dim) {
    throw InvalidArgument(which + ": covariance is not " + std::to_string(dim) + " x " +
                          std::to_string(dim));
  }
  if (!(weight > 0) || !std::isfinite(weight)) {
    throw InvalidArgument(which + ": weight must be positive and finite");
  }
  for (std::size_t i = 0; i < dim; ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const double scale = std::abs(covariance(i, j)) + std::abs(covariance(j, i)) + 1e-300;
      if (std::abs(covariance(i, j) - covariance(j, i)) > 1e-12 * scale) {
        throw InvalidArgument(which + ": covariance is not symmetric");
      }
    }
  }
}

}  // namespace

GaussianMixture::GaussianMixture(std::vector<std::vector<double>> means,
                                 std::vector<Matrix<double>> covariances,
                                 std::vector<double> weights)
    : means_(std::move(means)), covariances_(std::move(covariances)), weights_(std::move(weights)) {
  // Shapes first, so every later step can index freely.
  if (means_.empty()) throw InvalidArgument("Gaussian mixture: no components");
  if (covariances_.size() != means_.size() || weights_.size() != means_.size()) {
    throw InvalidArgument("Gaussian mixture: " + std::to_string(means_.size()) + " means, " +
                          std::to_string(covariances_.size()) + " covariances and " +
                          std::to_string(weights_.size()) + " weights");
  }
  const std::size_t dim = means_[0].size();
  if (dim == 0) throw InvalidArgument("Gaussian mixture: zero dimensions");
  double total = 0;
  for (std::size_t k = 0; k < means_.size(); ++k) {
    check_component(means_[k], covariances_[k], weights_[k], dim, k);
    total += weights_[k];
  }

  // Normalized weights, factors and the constant part of each component's log density.
  for (std::size_t k = 0; k < means_.size(); ++k) {
    weights_[k] /= total;
    cholesky_.push_back(cholesky(covariances_[k], k));
    double log_det_l = 0;
    for (std::size_t i = 0; i < dim; ++i) log_det_l += std::log(cholesky_[k](i, i));
    log_normalizers_.push_back(std::log(weights_[k]) - 0.5 * static_cast<double>(dim) * kLogTwoPi -
                               log_det_l);
  }
}

GaussianMixture GaussianMixture::random(int dim, int components, std::uint64_t seed,
                                        double spread) {
  if (dim < 1 || components < 1) {
    throw InvalidArgument("Gaussian mixture: dim and components must be at least 1");
  }
  const std::size_t d = static_cast<std::size_t>(dim);
  std::vector<std::vector<double>> means;
  std::vector<Matrix<double>> covariances;
  std::vector<double> weights;
  for (int k = 0; k < components; ++k) {
    // Each component draws from its own keyed stream: adding components keeps the others.
    data::RowRandom random(seed, static_cast<std::uint64_t>(k), data::kStructureStream);
    std::vector<double> mean(d);
    for (double& m : mean) m = spread * random.normal();

    // Sigma = A A^T / D + 0.05 I: full, well conditioned, variances around one.
    Matrix<double> factor(d, d);
    for (std::size_t i = 0; i < d * d; ++i) factor.data()[i] = random.normal();
    Matrix<double> covariance(d, d);
    for (std::size_t i = 0; i < d; ++i) {
      for (std::size_t j = 0; j < d; ++j) {
        double sum = 0;
        for (std::size_t k2 = 0; k2 < d; ++k2) sum += factor(i, k2) * factor(j, k2);
        covariance(i, j) = sum / static_cast<double>(d) + (i == j ? 0.05 : 0.0);
      }
    }
    means.push_back(std::move(mean));
    covariances.push_back(std::move(covariance));
    weights.push_back(1.0 + random.uniform());
  }
  return GaussianMixture(std::move(means), std::move(covariances), std::move(weights));
}

Matrix<double> GaussianMixture::sample(std::size_t n, std::uint64_t seed) const {
  const std::size_t d = static_cast<std::size_t>(dim());
  Matrix<double> x(n, d);
  std::vector<double> z(d);
  for (std::size_t r = 0; r < n; ++r) {
    // Component by inverse CDF of the weights, then x = mu + L z.
    data::RowRandom random(seed, r, data::kDatasetStream);
    const double u = random.uniform();
    std::size_t k = 0;
    double cumulative = weights_[0];
    while (u > cumulative && k + 1 < weights_.size()) cumulative += weights_[++k];
    for (double& value : z) value = random.normal();
    for (std::size_t i = 0; i < d; ++i) {
      double value = means_[k][i];
      for (std::size_t j = 0; j <= i; ++j) value += cholesky_[k](i, j) * z[j];
      x(r, i) = value;
    }
  }
  return x;
}

std::vector<double> GaussianMixture::log_prob(const Matrix<double>& x) const {
  const std::size_t d = static_cast<std::size_t>(dim());
  if (x.cols() != d) {
    throw DataError("Gaussian mixture: data has " + std::to_string(x.cols()) +
                    " columns, the mixture " + std::to_string(d));
  }
  std::vector<double> out(x.rows());
  std::vector<double> terms(means_.size());
  std::vector<double> z(d);
  for (std::size_t r = 0; r < x.rows(); ++r) {
    // Each component: solve L z = x - mu by forward substitution; log N = c_k - |z|^2 / 2.
    for (std::size_t k = 0; k < means_.size(); ++k) {
      double squared = 0;
      for (std::size_t i = 0; i < d; ++i) {
        double value = x(r, i) - means_[k][i];
        for (std::size_t j = 0; j < i; ++j) value -= cholesky_[k](i, j) * z[j];
        z[i] = value / cholesky_[k](i, i);
        squared += z[i] * z[i];
      }
      terms[k] = log_normalizers_[k] - 0.5 * squared;
    }

    // Log-sum-exp over components, stable however far the row is from every mean.
    const double top = *std::max_element(terms.begin(), terms.end());
    if (!std::isfinite(top)) {
      out[r] = top;
      continue;
    }
    double sum = 0;
    for (const double term : terms) sum += std::exp(term - top);
    out[r] = top + std::log(sum);
  }
  return out;
}

}  // namespace nfcal
