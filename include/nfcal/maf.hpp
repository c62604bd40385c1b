// Masked autoregressive flow (MAF): a stack of MADE layers with affine autoregressive
// transforms, optional batch normalization between them, and a standard normal base.
//
// Density direction, one parallel pass per layer, in the layer's order y = x[order]:
//     u_k = (y_k - mu_k(y_<k)) * exp(-alpha_k(y_<k)),   log|det| = -sum_k alpha_k
// Sampling direction, one dimension after another:
//     y_k = u_k * exp(alpha_k(y_<k)) + mu_k(y_<k)
// alpha is bounded softly, alpha = B * tanh(raw / B), so training cannot overflow exp().
//
// Hidden units carry degrees spread evenly over 1..D-1 and are stored sorted by degree, so
// every masked weight matrix has a prefix structure: row r uses columns [0, prefix[r]). The
// density pass skips the masked-out blocks, and the sampling pass computes each hidden unit
// exactly once per row (see src/maf/maf_sample.cpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

namespace nfcal {

namespace detail {
struct MadeBands;
template <typename T>
struct MadeTile;
}  // namespace detail

enum class Activation { kRelu, kTanh, kElu };
enum class Ordering { kReversed, kRandom };

std::string to_string(Activation activation);
std::string to_string(Ordering ordering);
/// Parses "relu", "tanh" or "elu"; throws InvalidArgument naming the value otherwise.
Activation parse_activation(const std::string& name);
/// Parses "reversed" or "random"; throws InvalidArgument naming the value otherwise.
Ordering parse_ordering(const std::string& name);

/// Architecture of a MAF. Defaults follow the published setup where it fits small data.
struct MafConfig {
  int dim = 2;                                // D, number of data columns
  int layers = 5;                             // number of MADE layers (flow steps)
  int hidden = 128;                           // hidden units per hidden layer of each MADE
  int hidden_layers = 2;                      // hidden layers per MADE
  Activation activation = Activation::kTanh;  // relu (the published choice) trains less stably
  Ordering ordering = Ordering::kReversed;    // how the order changes from layer to layer
  bool batch_norm = false;     // batch normalization after every MADE layer but the last
  double max_log_scale = 6.0;  // B in alpha = B * tanh(raw / B), at most 30
  std::uint64_t seed = 0;      // weight initialization and random orders

  /// Throws InvalidArgument naming the first field out of range.
  void validate() const;
  bool operator==(const MafConfig& other) const;
};

/// One parameter tensor inside the flat parameter vector.
struct TensorSpec {
  std::string name;        // e.g. "layer2.made.hidden0.weight"
  std::size_t offset = 0;  // into parameters()
  int rows = 0;
  int cols = 0;  // 1 for vectors
  std::size_t size() const { return static_cast<std::size_t>(rows) * cols; }
};

/// Index of the tensors of one MADE layer in BasicMaf::tensors(), and its masks.
struct MadeLayout {
  std::vector<int> order;           // order[k] = data column at position k of this layer
  std::vector<int> hidden_degrees;  // sorted, in 1..max(D-1, 1), one per hidden unit
  // weights[l]: hidden layer l (rows = hidden, cols = D for l = 0 else hidden)
  std::vector<int> weights, biases;
  int out_weight = -1;  // (2D, hidden): rows 0..D-1 give mu, rows D..2D-1 the raw scale
  int out_bias = -1;    // (2D)
  // prefix[l][r]: row r of weights[l] uses columns [0, prefix); out_prefix for out_weight
  std::vector<std::vector<int>> prefix;
  std::vector<int> out_prefix;  // per ordered output k (mu and alpha share it)
};

/// Index of the tensors of one batch-normalization layer.
struct BatchNormLayout {
  int log_gamma = -1;            // (D) parameters
  int beta = -1;                 // (D)
  std::size_t running_mean = 0;  // offsets into buffers(), D values each
  std::size_t running_var = 0;
};

/// Affine map from the user's units to the flow's: z = (x - shift) / scale. Its
/// log-determinant is part of log_prob, so densities are in the user's original units.
struct Standardization {
  std::vector<double> shift;  // empty: identity
  std::vector<double> scale;
  bool active() const { return !shift.empty(); }

  /// Row (dim values) into the flow's units, from x to z (may be the same array).
  template <typename T>
  void to_flow_units(const T* x, int dim, T* z) const {
    for (int d = 0; d < dim; ++d) {
      z[d] = active() ? static_cast<T>((x[d] - shift[d]) / scale[d]) : x[d];
    }
  }
  /// Rows back into the user's units, in place.
  template <typename T>
  void to_user_units(T* z, std::size_t rows, int dim) const {
    if (!active()) return;
    for (std::size_t i = 0; i < rows; ++i) {
      for (int d = 0; d < dim; ++d) {
        z[i * dim + d] = static_cast<T>(z[i * dim + d] * scale[d] + shift[d]);
      }
    }
  }
  /// log |det dz/dx|, the same for every row.
  double log_det() const {
    double total = 0;
    for (const double s : scale) total -= std::log(s);
    return total;
  }
};

/// Per-layer batch statistics from a training step, used to update the running averages.
struct BatchStatistics {
  std::vector<std::vector<double>> mean, var;  // [batch-norm layer][dimension]
};

/// A MAF whose arithmetic runs in T (float for use, double for exact tests).
template <typename T>
class BasicMaf {
 public:
  /// Builds the architecture and initializes weights from config.seed. The output layer
  /// starts at zero, so a fresh flow is the identity and log_prob is the standard normal's.
  explicit BasicMaf(const MafConfig& config);

  const MafConfig& config() const { return config_; }
  int dim() const { return config_.dim; }
  std::size_t num_parameters() const { return parameters_.size(); }

  /// All trainable values, one flat vector; tensors() says where each tensor lives.
  std::vector<T>& parameters() { return parameters_; }
  const std::vector<T>& parameters() const { return parameters_; }
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  /// Non-trainable state: running means and variances of batch normalization.
  std::vector<T>& buffers() { return buffers_; }
  const std::vector<T>& buffers() const { return buffers_; }
  const std::vector<MadeLayout>& made_layers() const { return made_; }
  const std::vector<BatchNormLayout>& batch_norm_layers() const { return batch_norm_; }

  const Standardization& standardization() const { return standardization_; }
  /// Sets the data standardization; scale must be positive and finite.
  void set_standardization(Standardization standardization);

  /// Log densities of n rows x (n, D) into out (n), in the user's units. Sums accumulate in
  /// double. Rows are processed in parallel tiles; the result does not depend on tiling. When
  /// u is given, the rows' base coordinates (n, D) are left there too.
  void log_prob(const T* x, std::size_t n, T* out, T* u = nullptr) const;
  std::vector<T> log_prob(const Matrix<T>& x) const;

  /// Maps data to base noise: u (n, D) and log|det dx->u| (n). Batch norm uses running stats.
  void forward(const T* x, std::size_t n, T* u, double* log_det) const;

  /// Maps base noise u (n, D) to data x (n, D) with the degree-ordered pass: every hidden
  /// unit is computed once per row. u and x may not alias.
  void inverse(const T* u, std::size_t n, T* x) const;
  /// The same map by the textbook method, D full network passes per layer (a reference).
  void inverse_naive(const T* u, std::size_t n, T* x) const;

  /// n samples; row i uses noise keyed by (seed, first_row + i), so any split of a request
  /// into batches gives the same rows.
  Matrix<T> sample(std::size_t n, std::uint64_t seed, std::uint64_t first_row = 0) const;
  /// The base noise sample() uses, (n, D).
  static Matrix<T> base_noise(std::size_t n, int dim, std::uint64_t seed,
                              std::uint64_t first_row = 0);

  /// Training objective on a batch (batch statistics in batch normalization): returns the
  /// mean negative log-likelihood and writes its gradient w.r.t. parameters() into grad
  /// (num_parameters()). statistics, when given, receives the batch-norm statistics.
  double loss_and_gradient(const T* x, std::size_t n, T* grad,
                           BatchStatistics* statistics = nullptr) const;

  /// Folds batch statistics into the running averages: running = m * running + (1-m) * batch.
  void update_running_statistics(const BatchStatistics& statistics, double momentum);
  /// Sets batch-norm running statistics to the exact statistics of x, layer by layer.
  void recompute_batch_norm_statistics(const T* x, std::size_t n);

  /// The same flow with values converted to U.
  template <typename U>
  BasicMaf<U> cast() const;

 private:
  template <typename U>
  friend class BasicMaf;

  void build_layout();
  void initialize_weights();
  // loss_and_gradient on rows that are processed together in one thread.
  double chunk_loss_and_gradient(const T* x, std::size_t n, T* grad,
                                 BatchStatistics* statistics) const;
  // One MADE layer (and the batch norm after it) of the density pass over a tile of rows.
  void forward_layer(std::size_t layer, const detail::MadeBands& bands, int activation, T bound,
                     int rows, T* z, double* log_det, std::vector<T>& y,
                     detail::MadeTile<T>& tile) const;

  MafConfig config_;
  std::vector<T> parameters_;
  std::vector<T> buffers_;
  std::vector<TensorSpec> tensors_;
  std::vector<MadeLayout> made_;
  std::vector<BatchNormLayout> batch_norm_;  // one after each MADE layer but the last
  Standardization standardization_;
};

using Maf = BasicMaf<float>;

/// The most CPU threads nfcal accepts. Far beyond any machine's cores, yet low enough that a
/// mistyped count is refused instead of exhausting the process's thread limit.
inline constexpr int kMaxThreads = 4096;

/// Throws InvalidArgument unless `threads` is 0 (all cores) or between 1 and kMaxThreads.
void check_thread_count(int threads);

/// Sets the number of CPU threads nfcal (OpenMP and BLAS) uses; 0 means all cores. Throws
/// as check_thread_count() does.
void set_num_threads(int threads);
/// The number of CPU threads nfcal uses.
int num_threads();

}  // namespace nfcal
