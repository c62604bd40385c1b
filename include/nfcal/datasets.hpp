// Built-in datasets, generated from a seed, most with an exactly known density so that the
// true log-likelihood can be reported beside a model's.
//
// Row i of every generator depends only on (seed, i): asking for more rows extends a dataset
// without changing the rows already drawn, and a train/test split is two seeds or two ranges
// of one. The random numbers come from the counter-based Philox generator, so results are the
// same on every platform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

namespace nfcal {

/// A mixture of Gaussians with full covariances: sum_k w_k N(x; mu_k, Sigma_k).
class GaussianMixture {
 public:
  /// `means` (K vectors of D), `covariances` (K symmetric positive definite D x D matrices),
  /// `weights` (K positive values, normalized here). Throws InvalidArgument naming the
  /// component when the sizes disagree, a weight is not positive, or a covariance is not
  /// symmetric positive definite.
  GaussianMixture(std::vector<std::vector<double>> means, std::vector<Matrix<double>> covariances,
                  std::vector<double> weights);

  /// A random mixture of `components` Gaussians in `dim` dimensions, fixed by `seed`: means
  /// spread with standard deviation `spread` per axis, covariances A A^T / dim + 0.05 I from a
  /// standard normal factor A (so variances are around 1), weights proportional to 1 + U(0, 1).
  static GaussianMixture random(int dim, int components, std::uint64_t seed, double spread = 3.0);

  int dim() const { return static_cast<int>(means_.empty() ? 0 : means_[0].size()); }
  int components() const { return static_cast<int>(means_.size()); }
  const std::vector<std::vector<double>>& means() const { return means_; }
  const std::vector<Matrix<double>>& covariances() const { return covariances_; }
  const std::vector<double>& weights() const { return weights_; }

  /// n rows (n, dim); row i is keyed by (seed, i).
  Matrix<double> sample(std::size_t n, std::uint64_t seed) const;

  /// The exact log density of every row of x (n, dim), through the Cholesky factors and a
  /// log-sum-exp over components. Throws DataError when x has another number of columns.
  std::vector<double> log_prob(const Matrix<double>& x) const;

 private:
  std::vector<std::vector<double>> means_;
  std::vector<Matrix<double>> covariances_;
  std::vector<double> weights_;
  std::vector<Matrix<double>> cholesky_;  // lower triangular L with L L^T = Sigma
  std::vector<double> log_normalizers_;   // log w_k - D/2 log(2 pi) - log det L_k
};

/// Two interleaved half circles of radius 1: the upper one centred at (0, 0), the lower at
/// (1, 0.5); each row picks a moon with probability 1/2 and an angle uniformly, then adds
/// N(0, noise^2) to both coordinates. Throws InvalidArgument when noise is negative.
Matrix<double> two_moons(std::size_t n, double noise, std::uint64_t seed);

/// The exact log density of two_moons(noise) at rows of x (n, 2): the angle is integrated out
/// numerically (Simpson's rule in log space, fine enough that the error is far below
/// sampling error). Throws InvalidArgument when noise is not positive.
std::vector<double> two_moons_log_prob(const Matrix<double>& x, double noise);

/// Three well separated isotropic Gaussian blobs (the mixture blobs_mixture() returns).
Matrix<double> gaussian_blobs(std::size_t n, std::uint64_t seed);
GaussianMixture blobs_mixture();

/// Eight isotropic Gaussians evenly spaced on a circle of radius 3 (ring_mixture()).
Matrix<double> ring_of_gaussians(std::size_t n, std::uint64_t seed);
GaussianMixture ring_mixture();

/// Uniform on the eight dark squares of a 4 x 4 checkerboard of unit squares covering
/// [-2, 2]^2 (those whose floor(x) + floor(y) is even): density 1/8 there, 0 elsewhere.
Matrix<double> checkerboard(std::size_t n, std::uint64_t seed);
/// log(1/8) on a dark square, -infinity elsewhere.
std::vector<double> checkerboard_log_prob(const Matrix<double>& x);

/// One entry of the dataset registry.
struct DatasetInfo {
  std::string name;            // what make_dataset() and `nfcal --dataset` accept
  std::string description;     // one line
  int dim = 0;                 // columns
  bool known_density = false;  // dataset_log_prob() works for it
};

/// The built-in datasets, in a stable order.
std::vector<DatasetInfo> list_datasets();

/// The registry entry of `name`. Besides the listed datasets, every name "mixture-<D>d" with D
/// from 1 to 1024 is a D-dimensional mixture of ten Gaussians with a known density, its
/// structure fixed by D (mixture-2d and mixture-8d are the listed ones). Throws
/// InvalidArgument listing the valid names otherwise.
DatasetInfo dataset_info(const std::string& name);

/// n rows of the built-in dataset `name`, row i keyed by (seed, i).
///
///     nfcal::Matrix<double> train = nfcal::make_dataset("two-moons", 4000, 1);
///     nfcal::Matrix<double> test = nfcal::make_dataset("two-moons", 1000, 2);
///
/// Throws InvalidArgument listing the valid names when `name` is unknown.
Matrix<double> make_dataset(const std::string& name, std::size_t n, std::uint64_t seed);

/// The true log density of dataset `name` at rows of x (n, dim). Throws InvalidArgument when
/// the dataset's density is not known or the name is unknown, DataError on a column mismatch.
std::vector<double> dataset_log_prob(const std::string& name, const Matrix<double>& x);

}  // namespace nfcal
