// The minibatch steps of fit()'s epochs behind one interface, so that the loop around them
// (validation split, early stopping, best weights) is the same on the CPU and on a GPU.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/train.hpp"

namespace nfcal::detail {

class EpochRunner {
 public:
  virtual ~EpochRunner() = default;
  /// One epoch over the training rows visited in `order`: per minibatch the loss and gradient,
  /// global-norm clipping, the Adam step and the running statistics. Returns the mean training
  /// loss. Throws Error when a loss is not finite.
  virtual double train_epoch(const std::vector<std::size_t>& order, int epoch) = 0;
  /// Makes the host flow hold the current parameters and running statistics.
  virtual void sync_to_host() = 0;
  /// Mean log-likelihood of the validation rows under the current parameters.
  virtual double validation_log_likelihood() = 0;
};

/// Epochs on the GPU config.device names (CudaTrainer), the rows kept in device memory.
/// Defined in src/maf/train_cuda.cpp; without the CUDA backend it throws InvalidArgument.
std::unique_ptr<EpochRunner> make_cuda_epoch_runner(Maf& flow, const Matrix<float>& train_rows,
                                                    const Matrix<float>& validation_rows,
                                                    const TrainConfig& config);

}  // namespace nfcal::detail
