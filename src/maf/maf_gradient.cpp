// The training objective of the MAF and its gradient by hand-written backpropagation.
//
// loss = mean_i [ -log N(u_i; 0, I) ] - mean_i [ log|det| ] with batch statistics in batch
// normalization. The forward pass keeps, per layer, the ordered input y, the MADE activations,
// alpha and the ordered output u; the backward pass walks the layers in reverse. Products run
// through BLAS; gradients of masked weights are zeroed outside each row's prefix, so masked
// weights stay exactly zero under any optimizer that leaves zero gradients alone.

#include <algorithm>
#include <cmath>
#include <vector>

#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"

#include "common/maf_math.hpp"
#include "maf/blas.hpp"
#include "maf/maf_internal.hpp"

namespace nfcal {

namespace {

// Rows per gradient chunk when a batch is split among threads.
constexpr std::size_t kGradientChunkRows = 128;

template <typename T>
struct LayerCache {
  std::vector<T> y;  // (n, D) layer input in the layer's order
  detail::MadeTile<T> tile;
  std::vector<T> alpha;  // (n, D) ordered
  std::vector<T> u;      // (n, D) ordered output
  // Batch normalization after this layer, if any.
  std::vector<T> x_hat;  // (n, D) normalized values
  std::vector<double> inv_std;
};

// Adds column sums of rows (n, cols) to out (cols).
template <typename T>
void add_column_sums(const T* rows, int n, int cols, T* out) {
  for (int r = 0; r < n; ++r) {
    const T* row = rows + static_cast<std::size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) out[c] += row[c];
  }
}

}  // namespace

template <typename T>
double BasicMaf<T>::loss_and_gradient(const T* x, std::size_t n_rows, T* grad,
                                      BatchStatistics* statistics) const {
  if (n_rows == 0) throw InvalidArgument("loss_and_gradient: the batch has no rows");
  if (!batch_norm_.empty() && n_rows < 2) {
    throw InvalidArgument("loss_and_gradient: batch normalization needs at least 2 rows");
  }

  // Without batch normalization rows are independent: fixed chunks of rows run on separate
  // threads and their gradients are summed in chunk order, so the result does not depend on
  // the thread count. Batch statistics couple all rows, so a batch-norm flow runs whole.
  const std::size_t chunks = (n_rows + kGradientChunkRows - 1) / kGradientChunkRows;
  if (!batch_norm_.empty() || chunks < 2) {
    return chunk_loss_and_gradient(x, n_rows, grad, statistics);
  }
  const std::size_t n_params = parameters_.size();
  std::vector<T> chunk_grads(chunks * n_params);
  std::vector<double> chunk_losses(chunks);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::ptrdiff_t c = 0; c < static_cast<std::ptrdiff_t>(chunks); ++c) {
    const std::size_t first = static_cast<std::size_t>(c) * kGradientChunkRows;
    const std::size_t rows = std::min(kGradientChunkRows, n_rows - first);
    chunk_losses[c] = chunk_loss_and_gradient(x + first * config_.dim, rows,
                                              chunk_grads.data() + c * n_params, nullptr);
  }

  // Means over chunks weighted by their rows give the mean over the batch.
  double loss = 0;
  std::fill(grad, grad + n_params, T(0));
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t rows = std::min(kGradientChunkRows, n_rows - c * kGradientChunkRows);
    const T weight = static_cast<T>(static_cast<double>(rows) / static_cast<double>(n_rows));
    loss += chunk_losses[c] * rows / static_cast<double>(n_rows);
    const T* chunk_grad = chunk_grads.data() + c * n_params;
    for (std::size_t i = 0; i < n_params; ++i) grad[i] += weight * chunk_grad[i];
  }
  if (statistics) {
    statistics->mean.clear();
    statistics->var.clear();
  }
  return loss;
}

template <typename T>
double BasicMaf<T>::chunk_loss_and_gradient(const T* x, std::size_t n_rows, T* grad,
                                            BatchStatistics* statistics) const {
  const int n = static_cast<int>(n_rows);
  const int dim = config_.dim;
  const int activation = static_cast<int>(config_.activation);
  const T bound = static_cast<T>(config_.max_log_scale);
  const int layers = static_cast<int>(made_.size());
  std::fill(grad, grad + parameters_.size(), T(0));
  if (statistics) {
    statistics->mean.assign(batch_norm_.size(), std::vector<double>(dim));
    statistics->var.assign(batch_norm_.size(), std::vector<double>(dim));
  }

  // Forward: standardize, then every layer, keeping its caches.
  std::vector<T> z(static_cast<std::size_t>(n) * dim);
  for (int r = 0; r < n; ++r) {
    standardization_.to_flow_units(x + r * dim, dim, z.data() + r * dim);
  }
  std::vector<LayerCache<T>> caches(layers);
  double log_det_total = 0;
  for (int layer = 0; layer < layers; ++layer) {
    const MadeLayout& made = made_[layer];
    LayerCache<T>& cache = caches[layer];
    cache.y.resize(z.size());
    for (int r = 0; r < n; ++r) {
      for (int k = 0; k < dim; ++k) cache.y[r * dim + k] = z[r * dim + made.order[k]];
    }
    detail::made_forward(parameters_, tensors_, made, detail::make_made_bands(made), activation,
                         dim, cache.y.data(), n, cache.tile);
    cache.alpha.resize(z.size());
    cache.u.resize(z.size());
    for (int r = 0; r < n; ++r) {
      const T* out = cache.tile.out.data() + static_cast<std::size_t>(r) * 2 * dim;
      for (int k = 0; k < dim; ++k) {
        const T alpha = maf_math::bounded_log_scale(out[dim + k], bound);
        const T u = maf_math::affine_to_noise(cache.y[r * dim + k], out[k], alpha);
        cache.alpha[r * dim + k] = alpha;
        cache.u[r * dim + k] = u;
        z[r * dim + made.order[k]] = u;
        log_det_total -= alpha;
      }
    }

    if (layer < static_cast<int>(batch_norm_.size())) {
      // Batch normalization with this batch's (biased) statistics.
      const BatchNormLayout& bn = batch_norm_[layer];
      cache.x_hat.resize(z.size());
      cache.inv_std.resize(dim);
      for (int d = 0; d < dim; ++d) {
        double mean = 0;
        for (int r = 0; r < n; ++r) mean += z[r * dim + d];
        mean /= n;
        double var = 0;
        for (int r = 0; r < n; ++r) var += (z[r * dim + d] - mean) * (z[r * dim + d] - mean);
        var /= n;
        if (statistics) {
          statistics->mean[layer][d] = mean;
          statistics->var[layer][d] = var;
        }
        const double inv_std = 1.0 / std::sqrt(var + detail::kBatchNormEpsilon);
        const double log_gamma = parameters_[tensors_[bn.log_gamma].offset + d];
        const double gamma = std::exp(log_gamma);
        const double beta = parameters_[tensors_[bn.beta].offset + d];
        cache.inv_std[d] = inv_std;
        for (int r = 0; r < n; ++r) {
          const double x_hat = (z[r * dim + d] - mean) * inv_std;
          cache.x_hat[r * dim + d] = static_cast<T>(x_hat);
          z[r * dim + d] = static_cast<T>(x_hat * gamma + beta);
        }
        log_det_total += n * (log_gamma + std::log(inv_std));
      }
    }
  }

  // Loss and its gradient at the base: d/du of mean 0.5 |u|^2 is u / n.
  double squared_norm = 0;
  for (const T value : z) squared_norm += static_cast<double>(value) * value;
  const double loss = -maf_math::standard_normal_log_density(squared_norm / n, dim) -
                      log_det_total / n - standardization_.log_det();
  const T inv_n = T(1) / static_cast<T>(n);
  std::vector<T> g(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) g[i] = z[i] * inv_n;

  std::vector<T> d_out, d_act, d_pre, d_y;
  for (int layer = layers - 1; layer >= 0; --layer) {
    const MadeLayout& made = made_[layer];
    const LayerCache<T>& cache = caches[layer];

    if (layer < static_cast<int>(batch_norm_.size())) {
      // Batch norm backward, including the log-determinant's dependence on the variance.
      const BatchNormLayout& bn = batch_norm_[layer];
      T* grad_log_gamma = grad + tensors_[bn.log_gamma].offset;
      T* grad_beta = grad + tensors_[bn.beta].offset;
      for (int d = 0; d < dim; ++d) {
        const double gamma = std::exp(parameters_[tensors_[bn.log_gamma].offset + d]);
        double sum_g = 0;
        double sum_g_xhat = 0;
        for (int r = 0; r < n; ++r) {
          sum_g += g[r * dim + d];
          sum_g_xhat += g[r * dim + d] * cache.x_hat[r * dim + d];
        }
        grad_beta[d] += static_cast<T>(sum_g);
        grad_log_gamma[d] += static_cast<T>(sum_g_xhat * gamma - 1.0);
        const double mean_dxhat = sum_g * gamma / n;
        const double mean_dxhat_xhat = sum_g_xhat * gamma / n;
        for (int r = 0; r < n; ++r) {
          const double x_hat = cache.x_hat[r * dim + d];
          const double d_xhat = g[r * dim + d] * gamma;
          const double from_norm =
              cache.inv_std[d] * (d_xhat - mean_dxhat - x_hat * mean_dxhat_xhat);
          const double from_log_det = x_hat * cache.inv_std[d] / n;
          g[r * dim + d] = static_cast<T>(from_norm + from_log_det);
        }
      }
    }

    // Affine step backward: to mu, raw scale, and the direct path to y.
    d_out.resize(static_cast<std::size_t>(n) * 2 * dim);
    d_y.resize(static_cast<std::size_t>(n) * dim);
    for (int r = 0; r < n; ++r) {
      const T* out = cache.tile.out.data() + static_cast<std::size_t>(r) * 2 * dim;
      for (int k = 0; k < dim; ++k) {
        const T g_u = g[r * dim + made.order[k]];
        const T inv_scale = maf_math::exp_of(-cache.alpha[r * dim + k]);
        const T d_alpha = -g_u * cache.u[r * dim + k] + inv_n;
        d_out[r * 2 * dim + k] = -g_u * inv_scale;
        d_out[r * 2 * dim + dim + k] =
            d_alpha * maf_math::bounded_log_scale_derivative(out[dim + k], bound);
        d_y[r * dim + k] = g_u * inv_scale;
      }
    }

    // Output layer of the MADE.
    const int hidden_layers = static_cast<int>(made.weights.size());
    const TensorSpec& out_w = tensors_[made.out_weight];
    const int hidden = out_w.cols;
    const std::vector<T>& last = cache.tile.post[hidden_layers - 1];
    blas::gemm_tn(2 * dim, hidden, n, T(1), d_out.data(), 2 * dim, last.data(), hidden, T(1),
                  grad + out_w.offset, hidden);
    add_column_sums(d_out.data(), n, 2 * dim, grad + tensors_[made.out_bias].offset);
    d_act.resize(static_cast<std::size_t>(n) * hidden);
    blas::gemm_nn(n, hidden, 2 * dim, T(1), d_out.data(), 2 * dim,
                  parameters_.data() + out_w.offset, hidden, T(0), d_act.data(), hidden);

    // Hidden layers, last to first; the first passes its gradient on to y.
    for (int l = hidden_layers - 1; l >= 0; --l) {
      const TensorSpec& w = tensors_[made.weights[l]];
      const std::vector<T>& pre = cache.tile.pre[l];
      const std::vector<T>& post = cache.tile.post[l];
      d_pre.resize(pre.size());
      for (std::size_t i = 0; i < pre.size(); ++i) {
        d_pre[i] = d_act[i] * maf_math::activation_derivative(pre[i], post[i], activation);
      }
      const T* input = l == 0 ? cache.y.data() : cache.tile.post[l - 1].data();
      blas::gemm_tn(w.rows, w.cols, n, T(1), d_pre.data(), w.rows, input, w.cols, T(1),
                    grad + w.offset, w.cols);
      add_column_sums(d_pre.data(), n, w.rows, grad + tensors_[made.biases[l]].offset);
      if (l > 0) {
        d_act.resize(static_cast<std::size_t>(n) * w.cols);
        blas::gemm_nn(n, w.cols, w.rows, T(1), d_pre.data(), w.rows, parameters_.data() + w.offset,
                      w.cols, T(0), d_act.data(), w.cols);
      } else {
        blas::gemm_nn(n, w.cols, w.rows, T(1), d_pre.data(), w.rows, parameters_.data() + w.offset,
                      w.cols, T(1), d_y.data(), dim);
      }
    }

    // Back to data order for the layer below.
    for (int r = 0; r < n; ++r) {
      for (int k = 0; k < dim; ++k) g[r * dim + made.order[k]] = d_y[r * dim + k];
    }
  }

  // Masked weights get no gradient.
  for (const MadeLayout& made : made_) {
    for (std::size_t l = 0; l < made.weights.size(); ++l) {
      const TensorSpec& w = tensors_[made.weights[l]];
      for (int r = 0; r < w.rows; ++r) {
        T* row = grad + w.offset + static_cast<std::size_t>(r) * w.cols;
        std::fill(row + made.prefix[l][r], row + w.cols, T(0));
      }
    }
    const TensorSpec& out_w = tensors_[made.out_weight];
    for (int r = 0; r < out_w.rows; ++r) {
      T* row = grad + out_w.offset + static_cast<std::size_t>(r) * out_w.cols;
      std::fill(row + made.out_prefix[r % dim], row + out_w.cols, T(0));
    }
  }
  return loss;
}

template double BasicMaf<float>::loss_and_gradient(const float*, std::size_t, float*,
                                                   BatchStatistics*) const;
template double BasicMaf<double>::loss_and_gradient(const double*, std::size_t, double*,
                                                    BatchStatistics*) const;

}  // namespace nfcal
