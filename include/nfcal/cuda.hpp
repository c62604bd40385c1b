// The CUDA backend: a MAF, an XGBoost booster and the calibrated rejection sampler on one GPU.
//
// Available when nfcal::cuda_compiled() is true (the library was built with NFCAL_CUDA). Every
// class computes the same functions as its CPU counterpart, in float32, from the same flat
// parameters: CudaMaf matches BasicMaf<float>::log_prob and ::sample (the same Philox noise,
// keyed by seed and row), and the sampler accepts the same candidates as the CPU sampler for
// the same seed. Failures of CUDA, cuBLAS or CUB throw CudaError naming file, line and CUDA's
// message; running out of device memory names the size asked for.
//
// Streams: functions taking device pointers enqueue their work on `stream` (nullptr is the
// legacy default stream) and return without waiting, unless documented otherwise. Functions
// taking or returning host containers synchronize before they return. Objects are not safe to
// use from several host threads at once, and one object's calls on different streams must not
// overlap (they share scratch memory); use one object per thread or per stream.
//
//     nfcal::CudaMaf gpu(flow);                       // copies flow's parameters to GPU 0
//     std::vector<float> lp = gpu.log_prob(x);        // x: Matrix<float> (n, D) on the host
//     nfcal::Matrix<float> s = gpu.sample(1000, 42);  // the same rows as flow.sample(1000, 42)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nfcal/classifier.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/train.hpp"

struct CUstream_st;  // the CUDA runtime's stream type (cudaStream_t is CUstream_st*)

namespace nfcal {

using CudaStream = CUstream_st*;

/// How CudaMaf evaluates densities: one fused kernel with each layer's weights in shared
/// memory, or cuBLAS products with element-wise kernels (any model size).
enum class DensityPath { kFused, kGeneral };

/// A MAF on one CUDA device. Holds a packed copy of the flow's parameters; later changes to
/// the host flow are not seen.
class CudaMaf {
 public:
  /// Packs and uploads flow to CUDA device `device`, and chooses the density path once: fused
  /// when a layer's weights and a tile of rows fit in the device's shared memory. Throws
  /// InvalidArgument for a flow the kernels do not support (more than 4 hidden layers per
  /// MADE), CudaError when the device is missing or out of memory.
  explicit CudaMaf(const Maf& flow, int device = 0);
  ~CudaMaf();
  CudaMaf(CudaMaf&& other) noexcept;
  CudaMaf& operator=(CudaMaf&& other) noexcept;
  CudaMaf(const CudaMaf&) = delete;
  CudaMaf& operator=(const CudaMaf&) = delete;

  int device() const;
  int dim() const;

  /// The path chosen at construction (or set by set_density_path).
  DensityPath density_path() const;
  /// Forces a path (tests and benchmarks). Throws InvalidArgument when kFused is asked for
  /// and the model does not fit in shared memory.
  void set_density_path(DensityPath path);

  /// log P(x) of n rows d_x (n, D) into d_out (n); device pointers, asynchronous on stream.
  /// Large n is processed in chunks sized from free device memory.
  void log_prob(const float* d_x, std::size_t n, float* d_out, CudaStream stream = nullptr) const;
  /// Host convenience: uploads x (n, D) through pinned memory and returns the n log densities.
  std::vector<float> log_prob(const Matrix<float>& x) const;

  /// n samples into d_x (n, D), row i drawn from base noise keyed by (seed, first_row + i):
  /// the same rows as Maf::sample(n, seed, first_row). Degree-ordered: every hidden unit is
  /// computed once per row. Asynchronous on stream.
  void sample(std::size_t n, std::uint64_t seed, std::uint64_t first_row, float* d_x,
              CudaStream stream = nullptr) const;
  /// Host convenience for sample().
  Matrix<float> sample(std::size_t n, std::uint64_t seed, std::uint64_t first_row = 0) const;

  /// The same samples by the textbook method (D network passes per layer), for comparison.
  void sample_naive(std::size_t n, std::uint64_t seed, std::uint64_t first_row, float* d_x,
                    CudaStream stream = nullptr) const;

  struct Impl;
  /// Internal state, for the sampler in the same library.
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

/// Maximum-likelihood training steps on the GPU: the objective and gradient of
/// BasicMaf::loss_and_gradient and the optimizer step of fit() (global-norm clipping, Adam
/// with decoupled weight decay), on a device copy of the flow's flat parameters. Early
/// stopping and validation stay with the caller:
///
///     nfcal::CudaTrainer trainer(flow, config);
///     for (int epoch = 1; epoch <= config.epochs; ++epoch) {
///       trainer.train_epoch(d_train, n, my_permutation(n, epoch));
///       trainer.copy_to(flow);  // then validate on the CPU or with CudaMaf
///     }
class CudaTrainer {
 public:
  /// Copies flow (parameters, running statistics, standardization) to device `device`, with
  /// zero Adam moments. Throws InvalidArgument for an invalid config or a missing device.
  CudaTrainer(const Maf& flow, TrainConfig config, int device = 0);
  ~CudaTrainer();
  CudaTrainer(const CudaTrainer&) = delete;
  CudaTrainer& operator=(const CudaTrainer&) = delete;

  std::size_t num_parameters() const;

  /// Mean negative log-likelihood of d_x (n, D) on the device, batch statistics in batch
  /// norm, and its gradient into d_grad (num_parameters()) on the device. Synchronizes.
  /// Throws InvalidArgument for an empty batch, or fewer than 2 rows with batch norm.
  double loss_and_gradient(const float* d_x, std::size_t n, float* d_grad,
                           BatchStatistics* statistics = nullptr);
  /// Host convenience: x (n, D) in, gradient out in grad (resized).
  double loss_and_gradient(const Matrix<float>& x, std::vector<float>& grad,
                           BatchStatistics* statistics = nullptr);

  /// One epoch over device rows d_rows (n, D) visited in `order` (a permutation of 0..n-1),
  /// in minibatches of config.batch_size as fit() makes them: gradient, clipping, Adam step,
  /// running-statistics update. Returns the mean training loss. Throws Error when the loss
  /// is not finite.
  double train_epoch(const float* d_rows, std::size_t n, const std::vector<std::uint32_t>& order);

  /// Writes the current parameters and running statistics into flow, which must have the
  /// same architecture (InvalidArgument otherwise).
  void copy_to(Maf& flow) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Anything that writes classifier margins for rows in device memory.
class DeviceClassifier {
 public:
  virtual ~DeviceClassifier() = default;
  /// Columns of the rows it scores.
  virtual int num_features() const = 0;
  /// Margins of d_x (n, num_features()) into d_out (n), class balance removed, enqueued on
  /// stream (the implementation orders any other streams it uses against it).
  virtual void margins(const float* d_x, std::size_t n, float* d_out, CudaStream stream) const = 0;
};

/// An XGBoost booster predicting raw margins from device memory
/// (XGBoosterPredictFromCudaArray): the rows never go through the host.
class CudaBooster : public DeviceClassifier {
 public:
  /// Loads a model saved by XGBoost (UBJSON or JSON bytes) onto CUDA device `device`.
  /// `balance` (log(n1 / n0) of its training set) is subtracted from every margin. Throws
  /// XGBoostError with XGBoost's message when the bytes are not a model.
  CudaBooster(const std::vector<char>& model, int dim, double balance, int device = 0);
  ~CudaBooster() override;
  CudaBooster(const CudaBooster&) = delete;
  CudaBooster& operator=(const CudaBooster&) = delete;

  /// Trains on device rows d_x (n, dim) with labels d_labels (n, 1 for data, 0 for flow) for
  /// `rounds` boosting rounds. `params` are XGBoost parameters as "name=value" strings;
  /// device=cuda:N, objective binary:logistic and validate_parameters=1 are set for you.
  /// The balance is taken from the labels. Throws XGBoostError with XGBoost's message.
  static std::unique_ptr<CudaBooster> train(const float* d_x, const float* d_labels, std::size_t n,
                                            int dim, const std::vector<std::string>& params,
                                            int rounds, int device = 0);

  int num_features() const override { return dim_; }
  void margins(const float* d_x, std::size_t n, float* d_out, CudaStream stream) const override;
  /// Host convenience: margins of x (n, dim).
  std::vector<float> margins(const Matrix<float>& x) const;
  /// The model as UBJSON bytes (loadable by CudaBooster and by the CPU classifier).
  std::vector<char> save() const;
  double balance() const { return balance_; }

 private:
  CudaBooster(void* handle, int dim, double balance, int device);

  void* handle_ = nullptr;  // BoosterHandle
  int dim_ = 0;
  double balance_ = 0;
  int device_ = 0;
};

/// Settings of the calibrated rejection sampler.
struct CudaSamplerConfig {
  float ceiling = 2.0f;                               // L: accept when log u < min(m, L) - L
  std::uint64_t seed = 0;                             // keys candidate noise and uniforms
  std::size_t max_candidates = std::size_t(1) << 36;  // SamplingError beyond this
  std::size_t max_round = std::size_t(1) << 24;       // candidates per round, at most
  bool latent_features = false;  // the classifier scores [x, u]: samples and their base noise
};

/// What the last sample() call did, with the time spent in each stage.
struct CudaSamplingStats {
  std::size_t candidates = 0;
  std::size_t accepted = 0;
  int rounds = 0;
  double flow_seconds = 0;    // candidate generation
  double margin_seconds = 0;  // classifier
  double accept_seconds = 0;  // accept kernel and compaction
  double acceptance_rate() const {
    return candidates ? static_cast<double>(accepted) / static_cast<double>(candidates) : 0.0;
  }
};

/// Exact draws from the calibrated density Q_L(x) = P(x) exp(min(m(x), L)) / Z_L, entirely
/// on the device: generate candidates, predict margins, one fused accept kernel, compaction.
/// Candidate i (counted from 0 over the whole request) uses noise keyed by (seed, i) and the
/// uniform keyed by (seed, i), so the output is the first n accepted candidates in index
/// order, whatever the round sizes: the same rows the CPU sampler returns for that seed.
/// Holds references to flow and classifier; both must outlive the sampler.
class CudaCalibratedSampler {
 public:
  /// Throws InvalidArgument when the classifier's feature count differs from the flow's
  /// dimension or the ceiling is not finite.
  CudaCalibratedSampler(const CudaMaf& flow, const DeviceClassifier& classifier,
                        CudaSamplerConfig config);
  ~CudaCalibratedSampler();

  /// n accepted rows into d_out (n, D). Synchronizes on stream (it must read counts).
  /// Throws SamplingError when max_candidates are spent before n are accepted.
  void sample(std::size_t n, float* d_out, CudaStream stream = nullptr);
  /// Host convenience for sample().
  Matrix<float> sample(std::size_t n);

  /// log Z_L = log E_P[exp(min(m(x), L))] from `samples` fresh flow rows keyed by `seed`,
  /// by a stable log-mean-exp on the device. Synchronizes.
  LogZEstimate log_z(std::size_t samples, std::uint64_t seed);

  const CudaSamplingStats& last_stats() const { return stats_; }

 private:
  struct Buffers;
  const CudaMaf& flow_;
  const DeviceClassifier& classifier_;
  CudaSamplerConfig config_;
  CudaSamplingStats stats_;
  std::unique_ptr<Buffers> buffers_;
};

/// The fused accept kernel and compaction on their own: candidate rows d_rows (n, dim) with
/// margins d_margins (n, balance already removed), candidate indices first_index..+n-1.
/// Accepted rows are appended in index order to d_out (capacity rows, dim) starting at row
/// `offset`; rows past the capacity are dropped. Returns how many were accepted (all of them,
/// also those dropped). Synchronizes on stream.
std::size_t cuda_accept_rows(const float* d_rows, const float* d_margins, std::size_t n, int dim,
                             std::uint64_t first_index, std::uint64_t seed, float ceiling,
                             float* d_out, std::size_t offset, std::size_t capacity,
                             CudaStream stream = nullptr);

/// Stable log-mean-exp of min(d_values[i], ceiling) over n device values, with its delta-method
/// standard error, effective sample size and the largest unclipped value (ceiling may be
/// +infinity); NaN values are skipped and not counted in `samples`. Synchronizes.
LogZEstimate cuda_log_mean_exp(const float* d_values, std::size_t n, float ceiling,
                               CudaStream stream = nullptr);

}  // namespace nfcal
