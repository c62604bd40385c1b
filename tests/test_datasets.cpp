// Built-in datasets and Gaussian mixtures: densities against direct formulas, normalization,
// moments of samples, shapes, and determinism by seed.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/datasets.hpp"
#include "nfcal/error.hpp"

namespace nfcal {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Mean and standard error of values.
struct MeanError {
  double mean = 0;
  double error = 0;
};
MeanError mean_error(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / values.size();
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / (values.size() - 1) / values.size())};
}

// log det of a symmetric matrix by Gaussian elimination with partial pivoting.
double log_det(Matrix<double> a) {
  const std::size_t n = a.rows();
  double result = 0;
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t pivot = c;
    for (std::size_t r = c + 1; r < n; ++r) {
      if (std::abs(a(r, c)) > std::abs(a(pivot, c))) pivot = r;
    }
    for (std::size_t k = 0; k < n; ++k) std::swap(a(c, k), a(pivot, k));
    result += std::log(std::abs(a(c, c)));
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = a(r, c) / a(c, c);
      for (std::size_t k = c; k < n; ++k) a(r, k) -= f * a(c, k);
    }
  }
  return result;
}

Matrix<double> matrix2(double a, double b, double c, double d) {
  return Matrix<double>(2, 2, std::vector<double>{a, b, c, d});
}

TEST(GaussianMixtureTest, OneDimensionalLogProbMatchesTheTextbookFormula) {
  const GaussianMixture mixture({{-1.0}, {2.0}},
                                {Matrix<double>(1, 1, 0.5), Matrix<double>(1, 1, 2.0)}, {3.0, 7.0});
  const Matrix<double> x(3, 1, std::vector<double>{-1.3, 0.4, 5.0});
  const std::vector<double> got = mixture.log_prob(x);
  for (std::size_t r = 0; r < 3; ++r) {
    const double v = x(r, 0);
    const double p = 0.3 * std::exp(-(v + 1) * (v + 1) / (2 * 0.5)) / std::sqrt(2 * kPi * 0.5) +
                     0.7 * std::exp(-(v - 2) * (v - 2) / (2 * 2.0)) / std::sqrt(2 * kPi * 2.0);
    EXPECT_NEAR(got[r], std::log(p), 1e-12);
  }
}

TEST(GaussianMixtureTest, TwoDimensionalLogProbMatchesTheExplicitInverseAndDeterminant) {
  const double a = 1.5, b = 0.6, d = 0.8;  // covariance [[a, b], [b, d]]
  const GaussianMixture mixture({{0.5, -1.0}}, {matrix2(a, b, b, d)}, {1.0});
  const double det = a * d - b * b;
  const Matrix<double> x(2, 2, std::vector<double>{1.0, 0.0, -2.0, 3.0});
  const std::vector<double> got = mixture.log_prob(x);
  for (std::size_t r = 0; r < 2; ++r) {
    const double u = x(r, 0) - 0.5, v = x(r, 1) + 1.0;
    const double quad = (d * u * u - 2 * b * u * v + a * v * v) / det;
    EXPECT_NEAR(got[r], -std::log(2 * kPi) - 0.5 * std::log(det) - 0.5 * quad, 1e-12);
  }
}

TEST(GaussianMixtureTest, TwoDimensionalDensityIntegratesToOne) {
  const GaussianMixture mixture = GaussianMixture::random(2, 4, 11, 1.5);
  // Midpoint rule over a box that holds all but a negligible tail of every component.
  const int steps = 400;
  const double low = -12, high = 12, h = (high - low) / steps;
  Matrix<double> grid(static_cast<std::size_t>(steps) * steps, 2);
  for (int i = 0; i < steps; ++i) {
    for (int j = 0; j < steps; ++j) {
      grid(i * steps + j, 0) = low + (i + 0.5) * h;
      grid(i * steps + j, 1) = low + (j + 0.5) * h;
    }
  }
  double total = 0;
  for (double lp : mixture.log_prob(grid)) total += std::exp(lp) * h * h;
  EXPECT_NEAR(total, 1.0, 1e-4);
}

TEST(GaussianMixtureTest, MeanLogProbOfSamplesMatchesTheGaussianEntropy) {
  // One component in 8-D: E[log p] = -(D/2) log(2 pi e) - (1/2) log det Sigma.
  const GaussianMixture single = GaussianMixture::random(8, 1, 5);
  const double expected =
      -4.0 * std::log(2 * kPi * std::exp(1.0)) - 0.5 * log_det(single.covariances()[0]);
  const MeanError got = mean_error(single.log_prob(single.sample(40000, 3)));
  EXPECT_NEAR(got.mean, expected, 4 * got.error);
}

TEST(GaussianMixtureTest, SampleMomentsMatchTheMixtureMoments) {
  const GaussianMixture mixture = GaussianMixture::random(8, 10, 21);
  const std::size_t n = 60000;
  const Matrix<double> x = mixture.sample(n, 8);
  for (std::size_t i = 0; i < 8; ++i) {
    // Mean: sum w mu; variance: sum w (Sigma_ii + mu_i^2) - mean^2.
    double mean = 0, second = 0;
    for (int k = 0; k < mixture.components(); ++k) {
      const double w = mixture.weights()[k], mu = mixture.means()[k][i];
      mean += w * mu;
      second += w * (mixture.covariances()[k](i, i) + mu * mu);
    }
    const double variance = second - mean * mean;
    std::vector<double> column(n);
    for (std::size_t r = 0; r < n; ++r) column[r] = x(r, i);
    const MeanError got = mean_error(column);
    EXPECT_NEAR(got.mean, mean, 4.5 * std::sqrt(variance / n)) << "column " << i;
    double squares = 0;
    for (double v : column) squares += (v - got.mean) * (v - got.mean);
    EXPECT_NEAR(squares / (n - 1), variance, 0.05 * variance) << "column " << i;
  }
}

TEST(GaussianMixtureTest, RejectsInconsistentParameters) {
  EXPECT_THROW(GaussianMixture({{0.0, 0.0}}, {matrix2(1, 2, 2, 1)}, {1.0}), InvalidArgument);
  EXPECT_THROW(GaussianMixture({{0.0, 0.0}}, {matrix2(1, 0.5, 0.4, 1)}, {1.0}), InvalidArgument);
  EXPECT_THROW(GaussianMixture({{0.0}}, {Matrix<double>(1, 1, 1.0)}, {0.0}), InvalidArgument);
  EXPECT_THROW(GaussianMixture({{0.0}}, {matrix2(1, 0, 0, 1)}, {1.0}), InvalidArgument);
  const GaussianMixture ok({{0.0}}, {Matrix<double>(1, 1, 1.0)}, {1.0});
  EXPECT_THROW(ok.log_prob(Matrix<double>(1, 2)), DataError);
}

TEST(DatasetsTest, TwoMoonsWithoutNoiseLieOnTheTwoArcs) {
  const Matrix<double> x = two_moons(2000, 0.0, 4);
  int upper = 0;
  for (std::size_t r = 0; r < x.rows(); ++r) {
    const double to_upper = std::hypot(x(r, 0), x(r, 1));
    const double to_lower = std::hypot(x(r, 0) - 1.0, x(r, 1) - 0.5);
    const bool on_upper = std::abs(to_upper - 1.0) < 1e-9 && x(r, 1) >= -1e-9;
    const bool on_lower = std::abs(to_lower - 1.0) < 1e-9 && x(r, 1) <= 0.5 + 1e-9;
    EXPECT_TRUE(on_upper || on_lower) << "row " << r;
    upper += on_upper ? 1 : 0;
  }
  EXPECT_NEAR(upper, 1000, 4 * std::sqrt(500.0));
}

TEST(DatasetsTest, TwoMoonsDensityIntegratesToOneAndAveragesLikeItsSamples) {
  // Normalization on a grid covering both moons with a wide margin.
  const double noise = 0.1;
  const int nx = 300, ny = 200;
  const double x0 = -1.8, x1 = 2.8, y0 = -1.2, y1 = 1.7;
  const double hx = (x1 - x0) / nx, hy = (y1 - y0) / ny;
  Matrix<double> grid(static_cast<std::size_t>(nx) * ny, 2);
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < ny; ++j) {
      grid(i * ny + j, 0) = x0 + (i + 0.5) * hx;
      grid(i * ny + j, 1) = y0 + (j + 0.5) * hy;
    }
  }
  double total = 0;
  for (double lp : two_moons_log_prob(grid, noise)) total += std::exp(lp) * hx * hy;
  EXPECT_NEAR(total, 1.0, 2e-3);

  // E[log p] estimated twice: on samples, and as a grid integral of p log p.
  double entropy_grid = 0;
  const std::vector<double> lp = two_moons_log_prob(grid, noise);
  for (double v : lp) entropy_grid += std::exp(v) * v * hx * hy;
  const MeanError sampled = mean_error(two_moons_log_prob(two_moons(20000, noise, 6), noise));
  EXPECT_NEAR(sampled.mean, entropy_grid, 4 * sampled.error + 5e-3);
}

TEST(DatasetsTest, BlobsAndRingFollowTheirMixtures) {
  const Matrix<double> blobs = gaussian_blobs(3000, 1);
  const GaussianMixture blob_mixture = blobs_mixture();
  ASSERT_EQ(blob_mixture.components(), 3);
  std::vector<int> nearest_counts(3, 0);
  for (std::size_t r = 0; r < blobs.rows(); ++r) {
    int nearest = 0;
    double best = 1e300;
    for (int k = 0; k < 3; ++k) {
      const double d = std::hypot(blobs(r, 0) - blob_mixture.means()[k][0],
                                  blobs(r, 1) - blob_mixture.means()[k][1]);
      if (d < best) best = d, nearest = k;
    }
    EXPECT_LT(best, 3.0);  // six standard deviations
    ++nearest_counts[nearest];
  }
  for (int count : nearest_counts) EXPECT_NEAR(count, 1000, 4 * std::sqrt(1000 * 2.0 / 3));

  const Matrix<double> ring = ring_of_gaussians(2000, 2);
  std::vector<double> radii;
  for (std::size_t r = 0; r < ring.rows(); ++r) {
    radii.push_back(std::hypot(ring(r, 0), ring(r, 1)));
  }
  const MeanError radius = mean_error(radii);
  EXPECT_NEAR(radius.mean, 3.0, 0.05);
  EXPECT_EQ(ring_mixture().components(), 8);
}

TEST(DatasetsTest, CheckerboardPointsAreOnDarkSquaresWithTheUniformDensity) {
  const Matrix<double> x = checkerboard(4000, 9);
  std::vector<int> counts(8, 0);
  const std::vector<double> lp = checkerboard_log_prob(x);
  for (std::size_t r = 0; r < x.rows(); ++r) {
    const int fx = static_cast<int>(std::floor(x(r, 0)));
    const int fy = static_cast<int>(std::floor(x(r, 1)));
    ASSERT_TRUE(fx >= -2 && fx <= 1 && fy >= -2 && fy <= 1);
    ASSERT_EQ((fx + fy + 4) % 2, 0);
    ++counts[(fy + 2) * 2 + (fx + 2) / 2];
    EXPECT_DOUBLE_EQ(lp[r], -std::log(8.0));
  }
  for (int count : counts) EXPECT_NEAR(count, 500, 4 * std::sqrt(500 * 7.0 / 8));
  const Matrix<double> light(2, 2, std::vector<double>{-1.5, -1.5 + 1.0, 5.0, 0.0});
  EXPECT_TRUE(std::isinf(checkerboard_log_prob(light)[0]));
  EXPECT_TRUE(std::isinf(checkerboard_log_prob(light)[1]));
}

TEST(DatasetsTest, EveryRegisteredDatasetHasItsShapeAndIsDeterminedBySeed) {
  std::set<std::string> names;
  for (const DatasetInfo& info : list_datasets()) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_FALSE(info.description.empty());
    const Matrix<double> a = make_dataset(info.name, 300, 42);
    EXPECT_EQ(a.rows(), 300u);
    EXPECT_EQ(a.cols(), static_cast<std::size_t>(info.dim));
    EXPECT_EQ(make_dataset(info.name, 300, 42).values(), a.values()) << info.name;
    EXPECT_NE(make_dataset(info.name, 300, 43).values(), a.values()) << info.name;
    // More rows extend the dataset: the first rows stay the same.
    EXPECT_EQ(make_dataset(info.name, 500, 42).slice_rows(0, 300).values(), a.values());
    if (info.known_density) {
      for (double lp : dataset_log_prob(info.name, a)) EXPECT_TRUE(std::isfinite(lp));
    }
  }
  EXPECT_TRUE(names.count("two-moons") && names.count("mixture-8d"));
}

TEST(DatasetsTest, RegistryDensitiesAgreeWithTheGenerators) {
  const Matrix<double> blobs = make_dataset("blobs", 50, 1);
  EXPECT_EQ(dataset_log_prob("blobs", blobs), blobs_mixture().log_prob(blobs));
  const Matrix<double> moons = make_dataset("two-moons", 50, 1);
  EXPECT_EQ(dataset_log_prob("two-moons", moons), two_moons_log_prob(moons, 0.05));
  EXPECT_EQ(dataset_info("mixture-8d").dim, 8);
}

TEST(DatasetsTest, UnknownNamesAndWrongColumnsAreRejectedClearly) {
  try {
    make_dataset("moons", 10, 1);
    FAIL() << "no error";
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("unknown dataset 'moons'"), std::string::npos);
    EXPECT_NE(message.find("two-moons"), std::string::npos);
  }
  EXPECT_THROW(dataset_log_prob("mixture-8d", Matrix<double>(1, 2)), DataError);
  EXPECT_THROW(two_moons(5, -1.0, 1), InvalidArgument);
}

TEST(DatasetsTest, MixtureOfAnyDimensionHasItsShapeAndItsOwnDensity) {
  const DatasetInfo info = dataset_info("mixture-16d");
  EXPECT_EQ(info.dim, 16);
  EXPECT_TRUE(info.known_density);

  // Rows keyed by seed, 16 columns; the density is the mixture's: its mean over many rows of
  // the mixture is the negative entropy, which a shifted copy of the rows falls well below.
  const Matrix<double> x = make_dataset("mixture-16d", 4000, 3);
  ASSERT_EQ(x.cols(), 16u);
  EXPECT_EQ(make_dataset("mixture-16d", 4000, 3).values(), x.values());
  const std::vector<double> log_p = dataset_log_prob("mixture-16d", x);
  Matrix<double> shifted = x;
  for (std::size_t i = 0; i < shifted.size(); ++i) shifted.data()[i] += 1.5;
  const std::vector<double> log_p_shifted = dataset_log_prob("mixture-16d", shifted);
  double mean = 0, mean_shifted = 0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    ASSERT_TRUE(std::isfinite(log_p[i]));
    mean += log_p[i] / static_cast<double>(x.rows());
    mean_shifted += log_p_shifted[i] / static_cast<double>(x.rows());
  }
  EXPECT_GT(mean, mean_shifted + 1.0);

  // The listed 8-D mixture keeps its own structure; malformed names are not members.
  EXPECT_EQ(dataset_info("mixture-8d").description, list_datasets().back().description);
  for (const char* bad : {"mixture-0d", "mixture-08d", "mixture-2000d", "mixture-d", "mixture-3"}) {
    EXPECT_THROW(dataset_info(bad), InvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace nfcal
