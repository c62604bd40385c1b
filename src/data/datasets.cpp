// The built-in 2-D datasets, their exact densities, and the registry of named datasets.
#include "nfcal/datasets.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "nfcal/error.hpp"

#include "data/row_random.hpp"

namespace nfcal {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTwoMoonsNoise = 0.05;  // the registry's two moons: thin, sharp-edged arcs
constexpr std::uint64_t kMixture2dSeed = 0x6d697832ull;  // fixed structure, seeded rows
constexpr std::uint64_t kMixture8dSeed = 0x6d697838ull;
// mixture-<D>d for other D: the structure is fixed by this seed plus D.
constexpr std::uint64_t kMixtureFamilySeed = 0x6d69782d00000000ull;
constexpr int kMaxMixtureDim = 1024;

// Throws DataError unless x has `dim` columns.
void require_columns(const Matrix<double>& x, std::size_t dim, const std::string& what) {
  if (x.cols() != dim) {
    throw DataError(what + ": data has " + std::to_string(x.cols()) + " columns, expected " +
                    std::to_string(dim));
  }
}

// The point at angle t on moon m (0 upper, 1 lower).
void moon_point(int moon, double t, double* x, double* y) {
  if (moon == 0) {
    *x = std::cos(t);
    *y = std::sin(t);
  } else {
    *x = 1.0 - std::cos(t);
    *y = 0.5 - std::sin(t);
  }
}

// A mixture of isotropic Gaussians with equal weights at the given centres.
GaussianMixture isotropic_mixture(const std::vector<std::vector<double>>& centres, double sd) {
  std::vector<Matrix<double>> covariances;
  for (std::size_t k = 0; k < centres.size(); ++k) {
    Matrix<double> covariance(2, 2);
    covariance(0, 0) = covariance(1, 1) = sd * sd;
    covariances.push_back(covariance);
  }
  return GaussianMixture(centres, covariances, std::vector<double>(centres.size(), 1.0));
}

// `count` centres evenly spaced on a circle, the first at angle `start`.
std::vector<std::vector<double>> circle(int count, double radius, double start) {
  std::vector<std::vector<double>> centres;
  for (int k = 0; k < count; ++k) {
    const double angle = start + 2.0 * kPi * k / count;
    centres.push_back({radius * std::cos(angle), radius * std::sin(angle)});
  }
  return centres;
}

// One registry entry with the functions behind it.
struct Entry {
  DatasetInfo info;
  std::function<Matrix<double>(std::size_t, std::uint64_t)> make;
  std::function<std::vector<double>(const Matrix<double>&)> log_prob;  // empty: unknown
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = [] {
    const GaussianMixture mixture2d = GaussianMixture::random(2, 6, kMixture2dSeed, 2.5);
    const GaussianMixture mixture8d = GaussianMixture::random(8, 10, kMixture8dSeed);
    return std::vector<Entry>{
        {{"two-moons", "two interleaved half circles with Gaussian noise 0.05 (the default)", 2,
          true},
         [](std::size_t n, std::uint64_t seed) { return two_moons(n, kTwoMoonsNoise, seed); },
         [](const Matrix<double>& x) { return two_moons_log_prob(x, kTwoMoonsNoise); }},
        {{"blobs", "three separated isotropic Gaussian blobs", 2, true},
         gaussian_blobs,
         [](const Matrix<double>& x) { return blobs_mixture().log_prob(x); }},
        {{"ring", "eight Gaussians evenly spaced on a circle of radius 3", 2, true},
         ring_of_gaussians,
         [](const Matrix<double>& x) { return ring_mixture().log_prob(x); }},
        {{"checkerboard", "uniform on the dark squares of a 4 x 4 checkerboard", 2, true},
         checkerboard,
         checkerboard_log_prob},
        {{"mixture-2d", "a 2-D mixture of six Gaussians with full covariances", 2, true},
         [mixture2d](std::size_t n, std::uint64_t seed) { return mixture2d.sample(n, seed); },
         [mixture2d](const Matrix<double>& x) { return mixture2d.log_prob(x); }},
        {{"mixture-8d", "an 8-D mixture of ten Gaussians with full covariances", 8, true},
         [mixture8d](std::size_t n, std::uint64_t seed) { return mixture8d.sample(n, seed); },
         [mixture8d](const Matrix<double>& x) { return mixture8d.log_prob(x); }},
    };
  }();
  return entries;
}

// The dimension D of a name "mixture-<D>d" with D in [1, kMaxMixtureDim], or 0.
int mixture_family_dim(const std::string& name) {
  const std::string prefix = "mixture-";
  if (name.size() <= prefix.size() + 1 || name.compare(0, prefix.size(), prefix) != 0 ||
      name.back() != 'd') {
    return 0;
  }
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - 1);
  if (digits.empty() || digits.size() > 4 || digits[0] == '0' ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  const int dim = std::stoi(digits);
  return dim <= kMaxMixtureDim ? dim : 0;
}

// A member of the mixture-<D>d family: ten Gaussians in D dimensions whose structure is fixed
// by D. Made on first use and kept, so references to it stay valid.
const Entry& mixture_family_entry(int dim) {
  static std::mutex mutex;
  static std::map<int, Entry> made;
  const std::lock_guard<std::mutex> lock(mutex);
  auto found = made.find(dim);
  if (found == made.end()) {
    const GaussianMixture mixture =
        GaussianMixture::random(dim, 10, kMixtureFamilySeed + static_cast<std::uint64_t>(dim));
    Entry entry{{"mixture-" + std::to_string(dim) + "d",
                 "a " + std::to_string(dim) + "-D mixture of ten Gaussians with full covariances",
                 dim, true},
                [mixture](std::size_t n, std::uint64_t seed) { return mixture.sample(n, seed); },
                [mixture](const Matrix<double>& x) { return mixture.log_prob(x); }};
    found = made.emplace(dim, std::move(entry)).first;
  }
  return found->second;
}

const Entry& find_entry(const std::string& name) {
  std::string names;
  for (const Entry& entry : registry()) {
    if (entry.info.name == name) return entry;
    names += (names.empty() ? "" : ", ") + entry.info.name;
  }
  if (const int dim = mixture_family_dim(name); dim > 0) return mixture_family_entry(dim);
  throw InvalidArgument("unknown dataset '" + name + "'; built-in datasets: " + names +
                        ", and mixture-<D>d for any D from 1 to " + std::to_string(kMaxMixtureDim) +
                        " (nfcal datasets also lists the installable ones)");
}

}  // namespace

Matrix<double> two_moons(std::size_t n, double noise, std::uint64_t seed) {
  if (!(noise >= 0) || !std::isfinite(noise)) {
    throw InvalidArgument("two_moons: noise must be finite and non-negative");
  }
  Matrix<double> x(n, 2);
  for (std::size_t r = 0; r < n; ++r) {
    data::RowRandom random(seed, r, data::kDatasetStream);
    const int moon = random.uniform() < 0.5 ? 0 : 1;
    moon_point(moon, kPi * random.uniform(), &x(r, 0), &x(r, 1));
    x(r, 0) += noise * random.normal();
    x(r, 1) += noise * random.normal();
  }
  return x;
}

std::vector<double> two_moons_log_prob(const Matrix<double>& x, double noise) {
  if (!(noise > 0) || !std::isfinite(noise)) {
    throw InvalidArgument("two_moons_log_prob: noise must be finite and positive");
  }
  require_columns(x, 2, "two moons density");

  // Simpson nodes on [0, pi], spaced a small fraction of the noise along the unit-radius arcs.
  int intervals = static_cast<int>(std::ceil(20.0 * kPi / noise));
  intervals = std::max(64, intervals + (intervals % 2));
  const double h = kPi / intervals;
  std::vector<double> log_weights(static_cast<std::size_t>(intervals) + 1);
  for (int i = 0; i <= intervals; ++i) {
    const double simpson = (i == 0 || i == intervals) ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0);
    log_weights[static_cast<std::size_t>(i)] = std::log(simpson * h / 3.0);
  }

  // The nodes' points on both moons, computed once for all rows.
  const std::size_t nodes = log_weights.size();
  std::vector<double> node_x(2 * nodes), node_y(2 * nodes);
  for (int moon = 0; moon < 2; ++moon) {
    for (std::size_t i = 0; i < nodes; ++i) {
      moon_point(moon, h * static_cast<double>(i), &node_x[moon * nodes + i],
                 &node_y[moon * nodes + i]);
    }
  }

  // p(x) = 1/2 sum_moons 1/pi integral N(x; c(t), noise^2 I) dt, summed in log space.
  const double log_constant = std::log(0.5 / kPi) - std::log(2.0 * kPi * noise * noise);
  const double inverse_variance = 1.0 / (noise * noise);
  std::vector<double> out(x.rows());
  std::vector<double> terms(2 * nodes);
  for (std::size_t r = 0; r < x.rows(); ++r) {
    double top = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < 2 * nodes; ++j) {
      const double dx = x(r, 0) - node_x[j];
      const double dy = x(r, 1) - node_y[j];
      terms[j] = log_weights[j % nodes] - 0.5 * (dx * dx + dy * dy) * inverse_variance;
      top = std::max(top, terms[j]);
    }
    double sum = 0;
    for (const double term : terms) sum += std::exp(term - top);
    out[r] = log_constant + top + std::log(sum);
  }
  return out;
}

GaussianMixture blobs_mixture() { return isotropic_mixture(circle(3, 3.0, kPi / 2), 0.5); }

Matrix<double> gaussian_blobs(std::size_t n, std::uint64_t seed) {
  return blobs_mixture().sample(n, seed);
}

GaussianMixture ring_mixture() { return isotropic_mixture(circle(8, 3.0, 0.0), 0.3); }

Matrix<double> ring_of_gaussians(std::size_t n, std::uint64_t seed) {
  return ring_mixture().sample(n, seed);
}

Matrix<double> checkerboard(std::size_t n, std::uint64_t seed) {
  Matrix<double> x(n, 2);
  for (std::size_t r = 0; r < n; ++r) {
    // Dark cell c in 0..7: row c / 2 of the board, and the column in that row whose parity
    // matches, so floor(x) + floor(y) is even.
    data::RowRandom random(seed, r, data::kDatasetStream);
    const int cell = std::min(7, static_cast<int>(random.uniform() * 8.0));
    const int row = cell / 2;
    const int column = 2 * (cell % 2) + (row % 2);
    x(r, 0) = -2.0 + column + random.uniform();
    x(r, 1) = -2.0 + row + random.uniform();
  }
  return x;
}

std::vector<double> checkerboard_log_prob(const Matrix<double>& x) {
  require_columns(x, 2, "checkerboard density");
  std::vector<double> out(x.rows());
  for (std::size_t r = 0; r < x.rows(); ++r) {
    const double fx = std::floor(x(r, 0));
    const double fy = std::floor(x(r, 1));
    const bool inside = fx >= -2 && fx <= 1 && fy >= -2 && fy <= 1;
    const bool dark = std::fmod(std::abs(fx + fy), 2.0) == 0.0;
    out[r] = inside && dark ? -std::log(8.0) : -std::numeric_limits<double>::infinity();
  }
  return out;
}

std::vector<DatasetInfo> list_datasets() {
  std::vector<DatasetInfo> infos;
  for (const Entry& entry : registry()) infos.push_back(entry.info);
  return infos;
}

DatasetInfo dataset_info(const std::string& name) { return find_entry(name).info; }

Matrix<double> make_dataset(const std::string& name, std::size_t n, std::uint64_t seed) {
  return find_entry(name).make(n, seed);
}

std::vector<double> dataset_log_prob(const std::string& name, const Matrix<double>& x) {
  const Entry& entry = find_entry(name);
  if (!entry.log_prob) {
    throw InvalidArgument("dataset '" + name + "' has no known density");
  }
  require_columns(x, static_cast<std::size_t>(entry.info.dim), "dataset '" + name + "'");
  return entry.log_prob(x);
}

}  // namespace nfcal
