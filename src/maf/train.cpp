// Maximum-likelihood training of the MAF on the CPU: seeded minibatches, Adam with decoupled
// weight decay, global-norm gradient clipping, early stopping that keeps the best weights.

#include "nfcal/train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "nfcal/error.hpp"

#include "common/philox.hpp"
#include "maf/train_epochs.hpp"

namespace nfcal {

namespace {

constexpr double kAdamBeta1 = 0.9;
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEpsilon = 1e-8;

// A seeded permutation of 0..n-1; `round` picks an independent shuffle from the same seed.
std::vector<std::size_t> seeded_permutation(std::size_t n, std::uint64_t seed,
                                            std::uint32_t round) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = n; i > 1; --i) {
    const auto words = rng::keyed_words(seed, i - 1, round, rng::kStreamShuffle);
    const std::uint64_t draw = (static_cast<std::uint64_t>(words.w[1]) << 32) | words.w[0];
    std::swap(order[i - 1], order[draw % i]);
  }
  return order;
}

template <typename T>
Matrix<T> gather_rows(const Matrix<T>& x, const std::size_t* rows, std::size_t count) {
  Matrix<T> out(count, x.cols());
  for (std::size_t i = 0; i < count; ++i) {
    std::copy(x.row(rows[i]), x.row(rows[i]) + x.cols(), out.row(i));
  }
  return out;
}

template <typename T>
double mean_log_prob(const BasicMaf<T>& flow, const Matrix<T>& x) {
  const std::vector<T> values = flow.log_prob(x);
  double sum = 0;
  for (const T value : values) sum += value;
  return sum / static_cast<double>(values.size());
}

// Per-column mean and standard deviation; constant columns get scale 1.
template <typename T>
Standardization column_statistics(const Matrix<T>& x) {
  Standardization stats;
  const std::size_t n = x.rows();
  for (std::size_t d = 0; d < x.cols(); ++d) {
    double mean = 0;
    for (std::size_t i = 0; i < n; ++i) mean += x(i, d);
    mean /= static_cast<double>(n);
    double var = 0;
    for (std::size_t i = 0; i < n; ++i) var += (x(i, d) - mean) * (x(i, d) - mean);
    var /= static_cast<double>(n);
    const double scale = std::sqrt(var);
    stats.shift.push_back(mean);
    // A column is constant when its spread is below float resolution at its own magnitude;
    // any other spread, however small in absolute terms (1e-30), is the column's unit.
    const bool constant = !(scale > 1e-7 * std::fabs(mean)) || !(scale > 0);
    stats.scale.push_back(constant ? 1.0 : scale);
  }
  return stats;
}

// The CPU backend's epochs: minibatch gradients through BasicMaf::loss_and_gradient, global
// norm clipping and Adam with decoupled weight decay, all on the host flow in place.
template <typename T>
class CpuEpochRunner final : public detail::EpochRunner {
 public:
  CpuEpochRunner(BasicMaf<T>& flow, const Matrix<T>& train_rows, const Matrix<T>& held_out,
                 const TrainConfig& config)
      : flow_(flow),
        train_rows_(train_rows),
        held_out_(held_out),
        config_(config),
        grad_(flow.num_parameters()),
        first_moment_(flow.num_parameters(), 0.0),
        second_moment_(flow.num_parameters(), 0.0) {}

  double train_epoch(const std::vector<std::size_t>& order, int epoch) override {
    std::vector<T>& params = flow_.parameters();
    const std::size_t n_params = params.size();
    const std::size_t batch = std::min<std::size_t>(config_.batch_size, train_rows_.rows());
    double loss_sum = 0;
    std::size_t rows_seen = 0;
    BatchStatistics statistics;

    for (std::size_t first = 0; first + 2 <= train_rows_.rows(); first += batch) {
      // One minibatch: gradient, clipping, Adam step with decoupled weight decay.
      const std::size_t count = std::min(batch, train_rows_.rows() - first);
      const Matrix<T> x = gather_rows(train_rows_, order.data() + first, count);
      const double loss = flow_.loss_and_gradient(x.data(), count, grad_.data(), &statistics);
      if (!std::isfinite(loss)) {
        throw Error("training diverged at epoch " + std::to_string(epoch) +
                    " (non-finite loss); lower --learning-rate or --clip-norm");
      }
      loss_sum += loss * static_cast<double>(count);
      rows_seen += count;

      double norm_sq = 0;
      for (const T g : grad_) norm_sq += static_cast<double>(g) * g;
      const double norm = std::sqrt(norm_sq);
      const double clip =
          config_.clip_norm > 0 && norm > config_.clip_norm ? config_.clip_norm / norm : 1.0;

      ++step_;
      const double correction1 = 1.0 - std::pow(kAdamBeta1, static_cast<double>(step_));
      const double correction2 = 1.0 - std::pow(kAdamBeta2, static_cast<double>(step_));
      const double decay = 1.0 - config_.learning_rate * config_.weight_decay;
      for (std::size_t i = 0; i < n_params; ++i) {
        const double g = grad_[i] * clip;
        first_moment_[i] = kAdamBeta1 * first_moment_[i] + (1 - kAdamBeta1) * g;
        second_moment_[i] = kAdamBeta2 * second_moment_[i] + (1 - kAdamBeta2) * g * g;
        const double update = config_.learning_rate * (first_moment_[i] / correction1) /
                              (std::sqrt(second_moment_[i] / correction2) + kAdamEpsilon);
        params[i] = static_cast<T>(params[i] * decay - update);
      }
      flow_.update_running_statistics(statistics, config_.batch_norm_momentum);
    }
    return loss_sum / static_cast<double>(std::max<std::size_t>(1, rows_seen));
  }

  void sync_to_host() override {}  // the host flow is the one being trained

  double validation_log_likelihood() override { return mean_log_prob(flow_, held_out_); }

 private:
  BasicMaf<T>& flow_;
  const Matrix<T>& train_rows_;
  const Matrix<T>& held_out_;
  const TrainConfig& config_;
  std::vector<T> grad_;
  std::vector<double> first_moment_;
  std::vector<double> second_moment_;
  long long step_ = 0;
};

// The runner for config.device: the CPU backend, or CudaTrainer for float flows on a GPU.
template <typename T>
std::unique_ptr<detail::EpochRunner> make_epoch_runner(BasicMaf<T>& flow,
                                                       const Matrix<T>& train_rows,
                                                       const Matrix<T>& held_out,
                                                       const TrainConfig& config) {
  if (!config.device.is_cuda()) {
    return std::make_unique<CpuEpochRunner<T>>(flow, train_rows, held_out, config);
  }
  if constexpr (std::is_same_v<T, float>) {
    return detail::make_cuda_epoch_runner(flow, train_rows, held_out, config);
  } else {
    throw InvalidArgument("training on a GPU needs a float flow (nfcal::Maf), not double");
  }
}

}  // namespace

void TrainConfig::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw InvalidArgument("training configuration: " + message);
  };
  require(epochs >= 1, "epochs must be at least 1, got " + std::to_string(epochs));
  require(batch_size >= 2, "batch_size must be at least 2, got " + std::to_string(batch_size));
  require(std::isfinite(learning_rate) && learning_rate > 0,
          "learning_rate must be positive, got " + std::to_string(learning_rate));
  require(std::isfinite(weight_decay) && weight_decay >= 0,
          "weight_decay must be >= 0, got " + std::to_string(weight_decay));
  require(std::isfinite(clip_norm), "clip_norm must be finite");
  require(patience >= 1, "patience must be at least 1, got " + std::to_string(patience));
  require(validation_fraction > 0 && validation_fraction < 1,
          "validation_fraction must be in (0, 1), got " + std::to_string(validation_fraction));
  require(batch_norm_momentum >= 0 && batch_norm_momentum < 1,
          "batch_norm_momentum must be in [0, 1)");
}

template <typename T>
void check_rows(const Matrix<T>& x, int dim, const std::string& what) {
  if (x.rows() == 0) throw DataError(what + ": no rows");
  if (x.cols() != static_cast<std::size_t>(dim)) {
    throw DataError(what + ": " + std::to_string(x.cols()) + " columns, expected " +
                    std::to_string(dim));
  }
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (std::size_t d = 0; d < x.cols(); ++d) {
      if (!std::isfinite(static_cast<double>(x(i, d)))) {
        throw DataError(what + ": row " + std::to_string(i) + ", column " + std::to_string(d) +
                        " is " + (std::isnan(static_cast<double>(x(i, d))) ? "NaN" : "infinite"));
      }
    }
  }
}

template <typename T>
TrainResult fit(BasicMaf<T>& flow, const Matrix<T>& train,
                const typename detail::NonDeduced<Matrix<T>>::type* validation,
                const TrainConfig& config, const EpochCallback& on_epoch) {
  config.validate();
  const int dim = flow.dim();
  check_rows(train, dim, "training data");
  if (validation) check_rows(*validation, dim, "validation data");

  // Hold out a seeded validation split when none is given.
  Matrix<T> train_rows;
  Matrix<T> held_out;
  if (validation) {
    train_rows = train;
    held_out = *validation;
  } else {
    if (train.rows() < 4) {
      throw DataError("training data: " + std::to_string(train.rows()) +
                      " rows; at least 4 are needed to hold out a validation split");
    }
    const auto order = seeded_permutation(train.rows(), config.seed, 0xFFFFFFFFu);
    const std::size_t n_valid = std::max<std::size_t>(
        1, static_cast<std::size_t>(config.validation_fraction * train.rows()));
    held_out = gather_rows(train, order.data(), n_valid);
    train_rows = gather_rows(train, order.data() + n_valid, train.rows() - n_valid);
  }
  if (train_rows.rows() < 2) throw DataError("training data: at least 2 rows are needed");
  if (config.standardize) flow.set_standardization(column_statistics(train_rows));

  // The epochs' minibatch steps run on the device the configuration names.
  std::unique_ptr<detail::EpochRunner> runner =
      make_epoch_runner(flow, train_rows, held_out, config);
  std::vector<T>& params = flow.parameters();
  std::vector<T> best_params = params;
  std::vector<T> best_buffers = flow.buffers();

  TrainResult result;
  result.best_validation_log_likelihood = mean_log_prob(flow, held_out);
  int epochs_without_gain = 0;

  for (int epoch = 1; epoch <= config.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const auto order =
        seeded_permutation(train_rows.rows(), config.seed, static_cast<std::uint32_t>(epoch));
    const double loss = runner->train_epoch(order, epoch);
    runner->sync_to_host();

    // Validation and early stopping on the held-out log-likelihood.
    EpochReport report;
    report.epoch = epoch;
    report.epochs = config.epochs;
    report.train_log_likelihood = -loss;
    report.validation_log_likelihood = runner->validation_log_likelihood();
    report.improved = std::isfinite(report.validation_log_likelihood) &&
                      report.validation_log_likelihood > result.best_validation_log_likelihood;
    if (report.improved) {
      result.best_validation_log_likelihood = report.validation_log_likelihood;
      result.best_epoch = epoch;
      best_params = params;
      best_buffers = flow.buffers();
      epochs_without_gain = 0;
    } else {
      ++epochs_without_gain;
    }
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.history.push_back(report);
    result.epochs_run = epoch;
    if (on_epoch) on_epoch(report);
    if (epochs_without_gain >= config.patience) {
      result.stopped_early = true;
      break;
    }
  }

  // Keep the best weights; batch norm then takes the exact statistics of the training rows.
  params = best_params;
  flow.buffers() = best_buffers;
  if (!flow.batch_norm_layers().empty()) {
    flow.recompute_batch_norm_statistics(train_rows.data(), train_rows.rows());
    result.best_validation_log_likelihood = mean_log_prob(flow, held_out);
  }
  return result;
}

template TrainResult fit(BasicMaf<float>&, const Matrix<float>&, const Matrix<float>*,
                         const TrainConfig&, const EpochCallback&);
template TrainResult fit(BasicMaf<double>&, const Matrix<double>&, const Matrix<double>*,
                         const TrainConfig&, const EpochCallback&);
template void check_rows(const Matrix<float>&, int, const std::string&);
template void check_rows(const Matrix<double>&, int, const std::string&);

}  // namespace nfcal
