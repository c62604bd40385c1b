// fit()'s epochs on a GPU: CudaTrainer takes the minibatch steps over training rows kept in
// device memory, and the validation rows are scored by CudaMaf, so no row crosses to the
// host after the first upload; only the parameters come back, once per epoch, for the best
// weights that fit() keeps.

#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "nfcal/error.hpp"

#include "maf/train_epochs.hpp"

#if defined(NFCAL_WITH_CUDA)
#include "nfcal/cuda.hpp"

#include "cuda_check.cuh"
#endif

namespace nfcal::detail {

#if defined(NFCAL_WITH_CUDA)

namespace {

class CudaEpochRunner final : public EpochRunner {
 public:
  CudaEpochRunner(Maf& flow, const Matrix<float>& train_rows, const Matrix<float>& validation_rows,
                  const TrainConfig& config)
      : flow_(flow),
        device_(config.device.index),
        trainer_(flow, config, config.device.index),
        rows_(train_rows.rows()),
        validation_count_(validation_rows.rows()) {
    // The rows go to the device once; every epoch reads them there.
    cuda_detail::DeviceGuard guard(device_);
    d_train_.upload(train_rows.data(), train_rows.size(), nullptr);
    d_validation_.upload(validation_rows.data(), validation_rows.size(), nullptr);
    d_log_prob_.resize(validation_count_, "validation log densities");
    NFCAL_CUDA_CHECK(cudaDeviceSynchronize());
  }

  double train_epoch(const std::vector<std::size_t>& order, int /*epoch*/) override {
    order32_.assign(order.begin(), order.end());
    return trainer_.train_epoch(d_train_.data(), rows_, order32_);
  }

  void sync_to_host() override { trainer_.copy_to(flow_); }

  double validation_log_likelihood() override {
    // The current parameters, packed for the density kernels, over the resident rows.
    cuda_detail::DeviceGuard guard(device_);
    const CudaMaf scorer(flow_, device_);
    scorer.log_prob(d_validation_.data(), validation_count_, d_log_prob_.data(), nullptr);
    host_log_prob_.resize(validation_count_);
    NFCAL_CUDA_CHECK(cudaMemcpy(host_log_prob_.data(), d_log_prob_.data(),
                                validation_count_ * sizeof(float), cudaMemcpyDeviceToHost));
    double sum = 0;
    for (const float value : host_log_prob_) sum += value;
    return sum / static_cast<double>(validation_count_);
  }

 private:
  Maf& flow_;
  int device_;
  CudaTrainer trainer_;
  std::size_t rows_;
  std::size_t validation_count_;
  cuda_detail::DeviceBuffer<float> d_train_, d_validation_, d_log_prob_;
  std::vector<std::uint32_t> order32_;
  std::vector<float> host_log_prob_;
};

}  // namespace

std::unique_ptr<EpochRunner> make_cuda_epoch_runner(Maf& flow, const Matrix<float>& train_rows,
                                                    const Matrix<float>& validation_rows,
                                                    const TrainConfig& config) {
  return std::make_unique<CudaEpochRunner>(flow, train_rows, validation_rows, config);
}

#else

std::unique_ptr<EpochRunner> make_cuda_epoch_runner(Maf&, const Matrix<float>&,
                                                    const Matrix<float>&, const TrainConfig&) {
  throw InvalidArgument(
      "this build of nfcal has no CUDA backend (configure with nvcc present, NFCAL_CUDA=ON); "
      "train with --device cpu");
}

#endif

}  // namespace nfcal::detail
