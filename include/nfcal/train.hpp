// Maximum-likelihood training of a MAF on the CPU: minibatch Adam with weight decay, gradient
// clipping by global norm, and early stopping on a validation set that keeps the best weights.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nfcal/device.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal {

struct TrainConfig {
  int epochs = 200;  // upper bound; early stopping usually ends sooner
  int batch_size = 256;
  double learning_rate = 1e-3;
  double weight_decay = 1e-6;        // decoupled (AdamW-style)
  double clip_norm = 5.0;            // global gradient norm; <= 0 disables clipping
  int patience = 20;                 // epochs without validation gain before stopping
  double validation_fraction = 0.1;  // held out of the training rows when none is given
  bool standardize = true;           // learn per-column shift and scale from the training rows
  double batch_norm_momentum = 0.9;
  std::uint64_t seed = 0;         // minibatch order and the validation split
  Device device = Device::cpu();  // cuda: the epochs run on that GPU, the rows kept in its memory

  /// Throws InvalidArgument naming the first field out of range.
  void validate() const;
};

/// One line of training progress.
struct EpochReport {
  int epoch = 0;                         // 1-based
  int epochs = 0;                        // the configured maximum
  double train_log_likelihood = 0;       // mean over the epoch's minibatches, nats
  double validation_log_likelihood = 0;  // mean over the validation rows, nats
  double seconds = 0;                    // wall time of the epoch
  bool improved = false;                 // a new best validation value
};

struct TrainResult {
  int epochs_run = 0;
  int best_epoch = 0;
  double best_validation_log_likelihood = 0;
  bool stopped_early = false;
  std::vector<EpochReport> history;
};

using EpochCallback = std::function<void(const EpochReport&)>;

namespace detail {
// Keeps T from being deduced through the validation pointer, so nullptr can be passed.
template <typename T>
struct NonDeduced {
  using type = T;
};
}  // namespace detail

/// Trains flow in place on rows of train (n, D). Without a validation matrix, a seeded
/// validation_fraction of train is held out. Ends with the best validation weights loaded.
/// With config.device a CUDA device (float flows only) every epoch runs there through
/// CudaTrainer, with the same minibatches, clipping and Adam steps as on the CPU.
/// Throws DataError on NaN/Inf or a column count other than the flow's dimension.
template <typename T>
TrainResult fit(BasicMaf<T>& flow, const Matrix<T>& train,
                const typename detail::NonDeduced<Matrix<T>>::type* validation,
                const TrainConfig& config, const EpochCallback& on_epoch = {});

/// Throws DataError naming the first row and column that holds NaN or Inf, or naming the
/// shape when the matrix has no rows or not `dim` columns. `what` names the data in messages.
template <typename T>
void check_rows(const Matrix<T>& x, int dim, const std::string& what);

}  // namespace nfcal
