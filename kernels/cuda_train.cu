// nfcal::CudaTrainer: the MAF's training objective, its gradient, and Adam on the GPU.
//
// The same algorithm as BasicMaf::loss_and_gradient (src/maf/maf_gradient.cpp), step for step,
// on device buffers in the flow's own flat parameter layout: loss = mean NLL with batch
// statistics in batch normalization. Forward per layer: gather in the layer's order, for
// every MADE matrix a cuBLAS product with the stored weights (masked entries are zero) and a
// bias-and-activation kernel, the affine kernel (one thread per row), batch norm with
// per-column statistics (one block per column). Backward walks the layers in reverse with the
// transposed products (cuBLAS, accumulating into the gradient) and element-wise kernels; the
// masked weights' gradients are zeroed at the end. The optimizer step (clipping by global norm,
// Adam with decoupled weight decay, moments in double) is train.cpp's, one thread per
// parameter. Element-wise kernels use 256 threads per block; reductions over rows use one
// 256-thread block per column.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <cub/block/block_reduce.cuh>

#include "nfcal/cuda.hpp"
#include "nfcal/device.hpp"

#include "common/maf_math.hpp"
#include "cuda_check.cuh"

namespace nfcal {

namespace {

constexpr int kThreads = 256;
constexpr double kBatchNormEpsilon = 1e-5;  // as src/maf
constexpr double kAdamBeta1 = 0.9;          // as train.cpp
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEpsilon = 1e-8;

unsigned blocks_for(std::size_t count) {
  return static_cast<unsigned>((count + kThreads - 1) / kThreads);
}

// --- Element-wise and per-row kernels ---------------------------------------------------------

/// x (n, D) = standardized rows[index[i]] (index may be null: rows in order).
__global__ void gather_standardize_kernel(const float* rows, const std::uint32_t* index,
                                          std::size_t n, int dim, const float* shift,
                                          const float* scale, float* z) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * dim) return;
  const std::size_t r = i / dim;
  const int d = static_cast<int>(i % dim);
  const std::size_t source = index ? index[r] : r;
  const float v = rows[source * dim + d];
  z[i] = shift ? (v - shift[d]) / scale[d] : v;
}

/// y[r][k] = z[r][order[k]].
__global__ void gather_order_kernel(const float* z, const int* order, std::size_t n, int dim,
                                    float* y) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n * dim) y[i] = z[(i / dim) * dim + order[i % dim]];
}

/// g[r][order[k]] = d_y[r][k].
__global__ void scatter_order_kernel(const float* d_y, const int* order, std::size_t n, int dim,
                                     float* g) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n * dim) g[(i / dim) * dim + order[i % dim]] = d_y[i];
}

/// pre += bias per column; post = activation(pre) when post is not null.
__global__ void bias_activation_kernel(float* pre, float* post, const float* bias, std::size_t n,
                                       int units, int activation) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * units) return;
  const float z = pre[i] + bias[i % units];
  pre[i] = z;
  if (post) post[i] = maf_math::activate(z, activation);
}

/// The affine step for every row: u, alpha, the layer's output in data order, -sum alpha.
__global__ void affine_forward_kernel(const float* y, const float* out, const int* order,
                                      std::size_t n, int dim, float bound, float* alpha, float* u,
                                      float* z, double* log_det) {
  const std::size_t r = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n) return;
  double sum = 0;
  for (int k = 0; k < dim; ++k) {
    const float* o = out + r * 2 * dim;
    const float a = maf_math::bounded_log_scale(o[dim + k], bound);
    const float v = maf_math::affine_to_noise(y[r * dim + k], o[k], a);
    alpha[r * dim + k] = a;
    u[r * dim + k] = v;
    z[r * dim + order[k]] = v;
    sum -= a;
  }
  log_det[r] += sum;
}

/// Backward of the affine step: d_out (n, 2D) and the direct part of d_y (n, D).
__global__ void affine_backward_kernel(const float* g, const float* out, const float* alpha,
                                       const float* u, const int* order, std::size_t n, int dim,
                                       float bound, float inv_n, float* d_out, float* d_y) {
  const std::size_t r = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n) return;
  for (int k = 0; k < dim; ++k) {
    const float g_u = g[r * dim + order[k]];
    const float inv_scale = maf_math::exp_of(-alpha[r * dim + k]);
    const float d_alpha = -g_u * u[r * dim + k] + inv_n;
    d_out[r * 2 * dim + k] = -g_u * inv_scale;
    d_out[r * 2 * dim + dim + k] =
        d_alpha * maf_math::bounded_log_scale_derivative(out[r * 2 * dim + dim + k], bound);
    d_y[r * dim + k] = g_u * inv_scale;
  }
}

/// d_pre = d_act * activation'(pre, post).
__global__ void activation_backward_kernel(const float* d_act, const float* pre, const float* post,
                                           std::size_t count, int activation, float* d_pre) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) {
    d_pre[i] = d_act[i] * maf_math::activation_derivative(pre[i], post[i], activation);
  }
}

/// out[i] = value[i] * scale.
__global__ void scale_kernel(const float* value, std::size_t count, float scale, float* out) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) out[i] = value[i] * scale;
}

// --- Reductions --------------------------------------------------------------------------------

using DoubleReduce = cub::BlockReduce<double, kThreads>;

/// grad[c] += sum over rows of values (n, cols); one block per column.
__global__ void column_sums_kernel(const float* values, std::size_t n, int cols, float* grad) {
  __shared__ typename DoubleReduce::TempStorage storage;
  const int c = blockIdx.x;
  double sum = 0;
  for (std::size_t r = threadIdx.x; r < n; r += blockDim.x) sum += values[r * cols + c];
  const double total = DoubleReduce(storage).Sum(sum);
  if (threadIdx.x == 0) grad[c] += static_cast<float>(total);
}

/// Sum of squares of `count` floats, one block.
__global__ void sum_squares_kernel(const float* values, std::size_t count, double* out) {
  __shared__ typename DoubleReduce::TempStorage storage;
  double sum = 0;
  for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) {
    sum += static_cast<double>(values[i]) * values[i];
  }
  const double total = DoubleReduce(storage).Sum(sum);
  if (threadIdx.x == 0) *out = total;
}

__global__ void sum_doubles_kernel(const double* values, std::size_t count, double* out) {
  __shared__ typename DoubleReduce::TempStorage storage;
  double sum = 0;
  for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) sum += values[i];
  const double total = DoubleReduce(storage).Sum(sum);
  if (threadIdx.x == 0) *out = total;
}

/// Batch norm with batch statistics, one block per column: mean and biased variance in
/// double, x_hat and z = x_hat exp(log_gamma) + beta.
__global__ void batch_norm_forward_kernel(float* z, std::size_t n, int dim, const float* log_gamma,
                                          const float* beta, float* x_hat, double* mean_out,
                                          double* var_out, double* inv_std_out) {
  __shared__ typename DoubleReduce::TempStorage storage;
  __shared__ double shared_mean, shared_inv_std;
  const int d = blockIdx.x;

  // Mean, then the variance around it (two passes, as the CPU).
  double sum = 0;
  for (std::size_t r = threadIdx.x; r < n; r += blockDim.x) sum += z[r * dim + d];
  const double total = DoubleReduce(storage).Sum(sum);
  if (threadIdx.x == 0) shared_mean = total / static_cast<double>(n);
  __syncthreads();
  const double mean = shared_mean;
  double squares = 0;
  for (std::size_t r = threadIdx.x; r < n; r += blockDim.x) {
    const double c = z[r * dim + d] - mean;
    squares += c * c;
  }
  const double var_total = DoubleReduce(storage).Sum(squares);
  if (threadIdx.x == 0) {
    const double var = var_total / static_cast<double>(n);
    shared_inv_std = 1.0 / sqrt(var + kBatchNormEpsilon);
    mean_out[d] = mean;
    var_out[d] = var;
    inv_std_out[d] = shared_inv_std;
  }
  __syncthreads();

  // Normalize the column.
  const double inv_std = shared_inv_std;
  const double gamma = exp(static_cast<double>(log_gamma[d]));
  for (std::size_t r = threadIdx.x; r < n; r += blockDim.x) {
    const double xh = (z[r * dim + d] - mean) * inv_std;
    x_hat[r * dim + d] = static_cast<float>(xh);
    z[r * dim + d] = static_cast<float>(xh * gamma + static_cast<double>(beta[d]));
  }
}

/// Batch norm backward, one block per column, including the log-determinant's dependence
/// on the variance; also the gradients of log_gamma and beta.
__global__ void batch_norm_backward_kernel(float* g, const float* x_hat, const double* inv_std,
                                           std::size_t n, int dim, const float* log_gamma,
                                           float* grad_log_gamma, float* grad_beta) {
  __shared__ typename DoubleReduce::TempStorage storage;
  __shared__ double shared_sum_g, shared_sum_g_xhat;
  const int d = blockIdx.x;
  double sum_g = 0;
  double sum_g_xhat = 0;
  for (std::size_t r = threadIdx.x; r < n; r += blockDim.x) {
    sum_g += g[r * dim + d];
    sum_g_xhat += static_cast<double>(g[r * dim + d]) * x_hat[r * dim + d];
  }
  const double total_g = DoubleReduce(storage).Sum(sum_g);
  __syncthreads();
  const double total_g_xhat = DoubleReduce(storage).Sum(sum_g_xhat);
  const double gamma = exp(static_cast<double>(log_gamma[d]));
  if (threadIdx.x == 0) {
    shared_sum_g = total_g;
    shared_sum_g_xhat = total_g_xhat;
    grad_beta[d] += static_cast<float>(total_g);
    grad_log_gamma[d] += static_cast<float>(total_g_xhat * gamma - 1.0);
  }
  __syncthreads();

  const double count = static_cast<double>(n);
  const double mean_dxhat = shared_sum_g * gamma / count;
  const double mean_dxhat_xhat = shared_sum_g_xhat * gamma / count;
  for (std::size_t r = threadIdx.x; r < n; r += blockDim.x) {
    const double xh = x_hat[r * dim + d];
    const double d_xhat = g[r * dim + d] * gamma;
    const double from_norm = inv_std[d] * (d_xhat - mean_dxhat - xh * mean_dxhat_xhat);
    const double from_log_det = xh * inv_std[d] / count;
    g[r * dim + d] = static_cast<float>(from_norm + from_log_det);
  }
}

/// Zeroes grad[r][c] for c >= prefix[r % prefix_rows] of a (rows, cols) masked matrix.
__global__ void mask_gradient_kernel(float* grad, int rows, int cols, const int* prefix,
                                     int prefix_rows) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<std::size_t>(rows) * cols) return;
  const int r = static_cast<int>(i / cols);
  if (static_cast<int>(i % cols) >= prefix[r % prefix_rows]) grad[i] = 0.0f;
}

/// Adam with decoupled weight decay on clipped gradients, as train.cpp.
__global__ void adam_kernel(float* params, const float* grad, double* m, double* v,
                            std::size_t count, double clip, double lr, double correction1,
                            double correction2, double decay) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const double g = grad[i] * clip;
  m[i] = kAdamBeta1 * m[i] + (1 - kAdamBeta1) * g;
  v[i] = kAdamBeta2 * v[i] + (1 - kAdamBeta2) * g * g;
  const double update = lr * (m[i] / correction1) / (sqrt(v[i] / correction2) + kAdamEpsilon);
  params[i] = static_cast<float>(params[i] * decay - update);
}

}  // namespace

// --- The trainer ---------------------------------------------------------------------------------

/// Device copies of one MADE layer's index data, and its tensors' offsets.
struct TrainLayer {
  cuda_detail::DeviceBuffer<int> order;                // (D)
  std::vector<cuda_detail::DeviceBuffer<int>> prefix;  // per hidden layer (rows)
  cuda_detail::DeviceBuffer<int> out_prefix;           // (D)
  std::vector<TensorSpec> weights, biases;
  TensorSpec out_weight, out_bias;
  int log_gamma = -1;  // parameter offset of the following batch norm, or -1
  int beta = -1;
};

/// Activations of one layer for the current batch.
struct TrainCache {
  cuda_detail::DeviceBuffer<float> y, out, alpha, u, x_hat;
  std::vector<cuda_detail::DeviceBuffer<float>> pre, post;
  cuda_detail::DeviceBuffer<double> mean, var, inv_std;
};

struct CudaTrainer::Impl {
  int device = 0;
  Maf flow;  // host copy: architecture, running statistics, standardization
  TrainConfig config;
  cublasHandle_t cublas = nullptr;
  std::vector<TrainLayer> layers;
  cuda_detail::DeviceBuffer<float> params, grad, shift, scale;
  cuda_detail::DeviceBuffer<double> m, v;
  long long step = 0;

  // Batch buffers, grown to the largest batch seen.
  std::size_t capacity = 0;
  std::vector<TrainCache> caches;
  cuda_detail::DeviceBuffer<float> z, g, d_out, d_act, d_pre, d_y, batch;
  cuda_detail::DeviceBuffer<double> log_det, scalar;
  cuda_detail::DeviceBuffer<std::uint32_t> index;

  explicit Impl(const Maf& f) : flow(f) {}
  ~Impl() {
    if (cublas) cublasDestroy(cublas);
  }
};

namespace {

/// Row-major products through cuBLAS's column-major view.
/// out (n, units) = in (n, k) * W (units, k)^T, all row-major.
void product_nt(cublasHandle_t h, const float* in, int n, int k, const float* w, int units,
                float* out) {
  const float one = 1.0f, zero = 0.0f;
  NFCAL_CUBLAS_CHECK(
      cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, units, n, k, &one, w, k, in, k, &zero, out, units));
}

/// grad (units, k) += d (n, units)^T * in (n, k).
void product_tn_accumulate(cublasHandle_t h, const float* d, int n, int units, const float* in,
                           int k, float* grad) {
  const float one = 1.0f;
  NFCAL_CUBLAS_CHECK(
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, k, units, n, &one, in, k, d, units, &one, grad, k));
}

/// out (n, k) = d (n, units) * W (units, k) + beta * out.
void product_nn(cublasHandle_t h, const float* d, int n, int units, const float* w, int k,
                float beta, float* out) {
  const float one = 1.0f;
  NFCAL_CUBLAS_CHECK(
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, k, n, units, &one, w, k, d, units, &beta, out, k));
}

void reserve_batch(CudaTrainer::Impl& t, std::size_t n) {
  if (n <= t.capacity) return;
  const MafConfig& c = t.flow.config();
  const std::size_t nd = n * c.dim;
  const std::size_t nh = n * c.hidden;
  t.z.resize(nd, "training rows");
  t.g.resize(nd, "training gradient rows");
  t.d_y.resize(nd, "training gradient rows");
  t.d_out.resize(2 * nd, "training output gradients");
  t.d_act.resize(nh, "training hidden gradients");
  t.d_pre.resize(nh, "training hidden gradients");
  t.log_det.resize(n, "training log-determinants");
  t.caches.resize(t.layers.size());
  for (TrainCache& cache : t.caches) {
    cache.y.resize(nd, "training layer inputs");
    cache.out.resize(2 * nd, "training layer outputs");
    cache.alpha.resize(nd, "training log-scales");
    cache.u.resize(nd, "training layer noise");
    cache.x_hat.resize(nd, "training batch norm");
    cache.mean.resize(c.dim);
    cache.var.resize(c.dim);
    cache.inv_std.resize(c.dim);
    cache.pre.resize(c.hidden_layers);
    cache.post.resize(c.hidden_layers);
    for (int l = 0; l < c.hidden_layers; ++l) {
      cache.pre[l].resize(nh, "training pre-activations");
      cache.post[l].resize(nh, "training activations");
    }
  }
  t.capacity = n;
}

/// The forward pass of a batch already in t.z (standardized); returns the summed log-det.
double forward(CudaTrainer::Impl& t, std::size_t n, BatchStatistics* statistics) {
  const MafConfig& c = t.flow.config();
  const int dim = c.dim;
  const int rows = static_cast<int>(n);
  const float* p = t.params.data();
  const unsigned grid_nd = blocks_for(n * dim);
  NFCAL_CUDA_CHECK(cudaMemset(t.log_det.data(), 0, n * sizeof(double)));
  double batch_norm_log_det = 0;
  if (statistics) {
    statistics->mean.assign(t.flow.batch_norm_layers().size(), std::vector<double>(dim));
    statistics->var.assign(t.flow.batch_norm_layers().size(), std::vector<double>(dim));
  }

  for (std::size_t li = 0; li < t.layers.size(); ++li) {
    TrainLayer& layer = t.layers[li];
    TrainCache& cache = t.caches[li];
    gather_order_kernel<<<grid_nd, kThreads>>>(t.z.data(), layer.order.data(), n, dim,
                                               cache.y.data());
    NFCAL_LAUNCH_CHECK();

    // MADE products: stored masked weights are zero, so dense products are exact.
    const float* in = cache.y.data();
    int width = dim;
    for (int l = 0; l < c.hidden_layers; ++l) {
      const TensorSpec& w = layer.weights[l];
      product_nt(t.cublas, in, rows, width, p + w.offset, w.rows, cache.pre[l].data());
      bias_activation_kernel<<<blocks_for(n * w.rows), kThreads>>>(
          cache.pre[l].data(), cache.post[l].data(), p + layer.biases[l].offset, n, w.rows,
          static_cast<int>(c.activation));
      NFCAL_LAUNCH_CHECK();
      in = cache.post[l].data();
      width = w.rows;
    }
    product_nt(t.cublas, in, rows, width, p + layer.out_weight.offset, 2 * dim, cache.out.data());
    bias_activation_kernel<<<blocks_for(n * 2 * dim), kThreads>>>(
        cache.out.data(), nullptr, p + layer.out_bias.offset, n, 2 * dim, 0);
    NFCAL_LAUNCH_CHECK();
    affine_forward_kernel<<<blocks_for(n), kThreads>>>(
        cache.y.data(), cache.out.data(), layer.order.data(), n, dim,
        static_cast<float>(c.max_log_scale), cache.alpha.data(), cache.u.data(), t.z.data(),
        t.log_det.data());
    NFCAL_LAUNCH_CHECK();
    if (layer.log_gamma < 0) continue;

    // Batch norm with this batch's statistics; its log-det from the statistics on the host.
    batch_norm_forward_kernel<<<dim, kThreads>>>(
        t.z.data(), n, dim, p + layer.log_gamma, p + layer.beta, cache.x_hat.data(),
        cache.mean.data(), cache.var.data(), cache.inv_std.data());
    NFCAL_LAUNCH_CHECK();
    std::vector<double> mean(dim), var(dim);
    std::vector<float> log_gamma(dim);
    NFCAL_CUDA_CHECK(
        cudaMemcpy(mean.data(), cache.mean.data(), dim * sizeof(double), cudaMemcpyDeviceToHost));
    NFCAL_CUDA_CHECK(
        cudaMemcpy(var.data(), cache.var.data(), dim * sizeof(double), cudaMemcpyDeviceToHost));
    NFCAL_CUDA_CHECK(cudaMemcpy(log_gamma.data(), p + layer.log_gamma, dim * sizeof(float),
                                cudaMemcpyDeviceToHost));
    for (int d = 0; d < dim; ++d) {
      const double inv_std = 1.0 / std::sqrt(var[d] + kBatchNormEpsilon);
      batch_norm_log_det += static_cast<double>(n) * (log_gamma[d] + std::log(inv_std));
    }
    if (statistics) {
      statistics->mean[li] = mean;
      statistics->var[li] = var;
    }
  }

  // The affine log-dets summed over rows, plus batch norm's.
  sum_doubles_kernel<<<1, kThreads>>>(t.log_det.data(), n, t.scalar.data());
  NFCAL_LAUNCH_CHECK();
  double affine = 0;
  NFCAL_CUDA_CHECK(cudaMemcpy(&affine, t.scalar.data(), sizeof(double), cudaMemcpyDeviceToHost));
  return affine + batch_norm_log_det;
}

/// The backward pass from g = z / n, accumulating into t.grad (zeroed first).
void backward(CudaTrainer::Impl& t, std::size_t n) {
  const MafConfig& c = t.flow.config();
  const int dim = c.dim;
  const int rows = static_cast<int>(n);
  const float* p = t.params.data();
  float* grad = t.grad.data();
  const float inv_n = 1.0f / static_cast<float>(n);
  const unsigned grid_nd = blocks_for(n * dim);
  scale_kernel<<<grid_nd, kThreads>>>(t.z.data(), n * dim, inv_n, t.g.data());
  NFCAL_LAUNCH_CHECK();

  for (std::size_t li = t.layers.size(); li-- > 0;) {
    TrainLayer& layer = t.layers[li];
    TrainCache& cache = t.caches[li];
    if (layer.log_gamma >= 0) {
      batch_norm_backward_kernel<<<dim, kThreads>>>(
          t.g.data(), cache.x_hat.data(), cache.inv_std.data(), n, dim, p + layer.log_gamma,
          grad + layer.log_gamma, grad + layer.beta);
      NFCAL_LAUNCH_CHECK();
    }

    // Affine step, then the output layer's weights, bias and input gradient.
    affine_backward_kernel<<<blocks_for(n), kThreads>>>(
        t.g.data(), cache.out.data(), cache.alpha.data(), cache.u.data(), layer.order.data(), n,
        dim, static_cast<float>(c.max_log_scale), inv_n, t.d_out.data(), t.d_y.data());
    NFCAL_LAUNCH_CHECK();
    const int hidden = layer.out_weight.cols;
    const float* last = cache.post[c.hidden_layers - 1].data();
    product_tn_accumulate(t.cublas, t.d_out.data(), rows, 2 * dim, last, hidden,
                          grad + layer.out_weight.offset);
    column_sums_kernel<<<2 * dim, kThreads>>>(t.d_out.data(), n, 2 * dim,
                                              grad + layer.out_bias.offset);
    NFCAL_LAUNCH_CHECK();
    product_nn(t.cublas, t.d_out.data(), rows, 2 * dim, p + layer.out_weight.offset, hidden, 0.0f,
               t.d_act.data());

    // Hidden layers, last to first; the first adds its input gradient to d_y.
    for (int l = c.hidden_layers - 1; l >= 0; --l) {
      const TensorSpec& w = layer.weights[l];
      activation_backward_kernel<<<blocks_for(n * w.rows), kThreads>>>(
          t.d_act.data(), cache.pre[l].data(), cache.post[l].data(), n * w.rows,
          static_cast<int>(c.activation), t.d_pre.data());
      NFCAL_LAUNCH_CHECK();
      const float* input = l == 0 ? cache.y.data() : cache.post[l - 1].data();
      product_tn_accumulate(t.cublas, t.d_pre.data(), rows, w.rows, input, w.cols, grad + w.offset);
      column_sums_kernel<<<w.rows, kThreads>>>(t.d_pre.data(), n, w.rows,
                                               grad + layer.biases[l].offset);
      NFCAL_LAUNCH_CHECK();
      if (l > 0) {
        product_nn(t.cublas, t.d_pre.data(), rows, w.rows, p + w.offset, w.cols, 0.0f,
                   t.d_act.data());
      } else {
        product_nn(t.cublas, t.d_pre.data(), rows, w.rows, p + w.offset, w.cols, 1.0f,
                   t.d_y.data());
      }
    }
    scatter_order_kernel<<<grid_nd, kThreads>>>(t.d_y.data(), layer.order.data(), n, dim,
                                                t.g.data());
    NFCAL_LAUNCH_CHECK();
  }

  // Masked weights get no gradient.
  for (TrainLayer& layer : t.layers) {
    for (int l = 0; l < c.hidden_layers; ++l) {
      const TensorSpec& w = layer.weights[l];
      mask_gradient_kernel<<<blocks_for(w.size()), kThreads>>>(grad + w.offset, w.rows, w.cols,
                                                               layer.prefix[l].data(), w.rows);
      NFCAL_LAUNCH_CHECK();
    }
    const TensorSpec& o = layer.out_weight;
    mask_gradient_kernel<<<blocks_for(o.size()), kThreads>>>(grad + o.offset, o.rows, o.cols,
                                                             layer.out_prefix.data(), dim);
    NFCAL_LAUNCH_CHECK();
  }
}

/// Loss of the batch in t.z and its gradient in t.grad.
double batch_loss_and_gradient(CudaTrainer::Impl& t, std::size_t n, BatchStatistics* statistics) {
  const MafConfig& c = t.flow.config();
  if (n == 0) throw InvalidArgument("CudaTrainer: the batch has no rows");
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw InvalidArgument("CudaTrainer: a batch of " + std::to_string(n) +
                          " rows exceeds cuBLAS's int row count");
  }
  if (c.batch_norm && n < 2) {
    throw InvalidArgument("CudaTrainer: batch normalization needs at least 2 rows");
  }
  NFCAL_CUDA_CHECK(cudaMemset(t.grad.data(), 0, t.grad.size() * sizeof(float)));
  const double log_det = forward(t, n, statistics);

  // loss = -log N(u) averaged - log-det averaged - the standardization's log-det.
  sum_squares_kernel<<<1, kThreads>>>(t.z.data(), n * c.dim, t.scalar.data());
  NFCAL_LAUNCH_CHECK();
  double squared = 0;
  NFCAL_CUDA_CHECK(cudaMemcpy(&squared, t.scalar.data(), sizeof(double), cudaMemcpyDeviceToHost));
  double standardization_log_det = 0;
  for (double s : t.flow.standardization().scale) standardization_log_det -= std::log(s);
  const double count = static_cast<double>(n);
  const double loss = -maf_math::standard_normal_log_density(squared / count, c.dim) -
                      log_det / count - standardization_log_det;
  backward(t, n);
  return loss;
}

void stage_batch(CudaTrainer::Impl& t, const float* d_rows, const std::uint32_t* d_index,
                 std::size_t n) {
  reserve_batch(t, n);
  const MafConfig& c = t.flow.config();
  const bool standardized = t.flow.standardization().active();
  gather_standardize_kernel<<<blocks_for(n * c.dim), kThreads>>>(
      d_rows, d_index, n, c.dim, standardized ? t.shift.data() : nullptr,
      standardized ? t.scale.data() : nullptr, t.z.data());
  NFCAL_LAUNCH_CHECK();
}

}  // namespace

CudaTrainer::CudaTrainer(const Maf& flow, TrainConfig config, int device)
    : impl_(std::make_unique<Impl>(flow)) {
  config.validate();
  if (device < 0 || device >= cuda_device_count()) {
    throw InvalidArgument("CudaTrainer: CUDA device " + std::to_string(device) +
                          " is not visible; train on the CPU");
  }
  cuda_detail::DeviceGuard guard(device);
  Impl& t = *impl_;
  t.device = device;
  t.config = config;

  // Parameters, optimizer state and standardization on the device.
  const std::size_t count = flow.num_parameters();
  t.params.upload(flow.parameters().data(), count, nullptr);
  t.grad.resize(count, "training gradient");
  t.m.resize(count, "Adam first moments");
  t.v.resize(count, "Adam second moments");
  NFCAL_CUDA_CHECK(cudaMemset(t.m.data(), 0, count * sizeof(double)));
  NFCAL_CUDA_CHECK(cudaMemset(t.v.data(), 0, count * sizeof(double)));
  t.scalar.resize(1);
  const Standardization& st = flow.standardization();
  if (st.active()) {
    const std::vector<float> shift(st.shift.begin(), st.shift.end());
    const std::vector<float> scale(st.scale.begin(), st.scale.end());
    t.shift.upload(shift.data(), shift.size(), nullptr);
    t.scale.upload(scale.data(), scale.size(), nullptr);
  }

  // Per layer: orders, prefixes and tensor offsets.
  const auto& tensors = flow.tensors();
  t.layers.resize(flow.made_layers().size());
  for (std::size_t i = 0; i < t.layers.size(); ++i) {
    const MadeLayout& made = flow.made_layers()[i];
    TrainLayer& layer = t.layers[i];
    layer.order.upload(made.order.data(), made.order.size(), nullptr);
    layer.prefix.resize(made.prefix.size());
    for (std::size_t l = 0; l < made.prefix.size(); ++l) {
      layer.prefix[l].upload(made.prefix[l].data(), made.prefix[l].size(), nullptr);
      layer.weights.push_back(tensors[made.weights[l]]);
      layer.biases.push_back(tensors[made.biases[l]]);
    }
    layer.out_prefix.upload(made.out_prefix.data(), made.out_prefix.size(), nullptr);
    layer.out_weight = tensors[made.out_weight];
    layer.out_bias = tensors[made.out_bias];
    if (i < flow.batch_norm_layers().size()) {
      layer.log_gamma = static_cast<int>(tensors[flow.batch_norm_layers()[i].log_gamma].offset);
      layer.beta = static_cast<int>(tensors[flow.batch_norm_layers()[i].beta].offset);
    }
  }
  NFCAL_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  NFCAL_CUBLAS_CHECK(cublasCreate(&t.cublas));
  NFCAL_CUBLAS_CHECK(cublasSetMathMode(t.cublas, CUBLAS_DEFAULT_MATH));
}

CudaTrainer::~CudaTrainer() = default;

std::size_t CudaTrainer::num_parameters() const { return impl_->flow.num_parameters(); }

double CudaTrainer::loss_and_gradient(const float* d_x, std::size_t n, float* d_grad,
                                      BatchStatistics* statistics) {
  cuda_detail::DeviceGuard guard(impl_->device);
  stage_batch(*impl_, d_x, nullptr, n);
  const double loss = batch_loss_and_gradient(*impl_, n, statistics);
  NFCAL_CUDA_CHECK(cudaMemcpy(d_grad, impl_->grad.data(), num_parameters() * sizeof(float),
                              cudaMemcpyDeviceToDevice));
  // A device-to-device copy does not block the host; the header promises d_grad is ready.
  NFCAL_CUDA_CHECK(cudaDeviceSynchronize());
  return loss;
}

double CudaTrainer::loss_and_gradient(const Matrix<float>& x, std::vector<float>& grad,
                                      BatchStatistics* statistics) {
  if (x.cols() != static_cast<std::size_t>(impl_->flow.dim())) {
    throw DataError("CudaTrainer: rows have " + std::to_string(x.cols()) +
                    " columns, the flow has " + std::to_string(impl_->flow.dim()));
  }
  cuda_detail::DeviceGuard guard(impl_->device);
  cuda_detail::DeviceBuffer<float> d_x(x.size(), "training batch");
  d_x.upload(x.data(), x.size(), nullptr);
  stage_batch(*impl_, d_x.data(), nullptr, x.rows());
  const double loss = batch_loss_and_gradient(*impl_, x.rows(), statistics);
  grad.resize(num_parameters());
  NFCAL_CUDA_CHECK(cudaMemcpy(grad.data(), impl_->grad.data(), grad.size() * sizeof(float),
                              cudaMemcpyDeviceToHost));
  return loss;
}

double CudaTrainer::train_epoch(const float* d_rows, std::size_t n,
                                const std::vector<std::uint32_t>& order) {
  Impl& t = *impl_;
  if (order.size() != n) {
    throw InvalidArgument("CudaTrainer::train_epoch: the order has " +
                          std::to_string(order.size()) + " entries for " + std::to_string(n) +
                          " rows");
  }
  cuda_detail::DeviceGuard guard(t.device);
  t.index.upload(order.data(), order.size(), nullptr);
  const std::size_t batch = std::min<std::size_t>(t.config.batch_size, n);
  const std::size_t count = num_parameters();
  double loss_sum = 0;
  std::size_t rows_seen = 0;
  BatchStatistics statistics;

  for (std::size_t first = 0; first + 2 <= n; first += batch) {
    // One minibatch: gradient, clipping, Adam step with decoupled weight decay.
    const std::size_t rows = std::min(batch, n - first);
    stage_batch(t, d_rows, t.index.data() + first, rows);
    const double loss = batch_loss_and_gradient(t, rows, &statistics);
    if (!std::isfinite(loss)) {
      throw Error(
          "GPU training diverged (non-finite loss); lower the learning rate or the "
          "clip norm");
    }
    loss_sum += loss * static_cast<double>(rows);
    rows_seen += rows;

    sum_squares_kernel<<<1, kThreads>>>(t.grad.data(), count, t.scalar.data());
    NFCAL_LAUNCH_CHECK();
    double norm_sq = 0;
    NFCAL_CUDA_CHECK(cudaMemcpy(&norm_sq, t.scalar.data(), sizeof(double), cudaMemcpyDeviceToHost));
    const double norm = std::sqrt(norm_sq);
    const double clip =
        t.config.clip_norm > 0 && norm > t.config.clip_norm ? t.config.clip_norm / norm : 1.0;
    ++t.step;
    const double correction1 = 1.0 - std::pow(kAdamBeta1, static_cast<double>(t.step));
    const double correction2 = 1.0 - std::pow(kAdamBeta2, static_cast<double>(t.step));
    const double decay = 1.0 - t.config.learning_rate * t.config.weight_decay;
    adam_kernel<<<blocks_for(count), kThreads>>>(t.params.data(), t.grad.data(), t.m.data(),
                                                 t.v.data(), count, clip, t.config.learning_rate,
                                                 correction1, correction2, decay);
    NFCAL_LAUNCH_CHECK();
    t.flow.update_running_statistics(statistics, t.config.batch_norm_momentum);
  }
  NFCAL_CUDA_CHECK(cudaDeviceSynchronize());
  return loss_sum / static_cast<double>(std::max<std::size_t>(1, rows_seen));
}

void CudaTrainer::copy_to(Maf& flow) const {
  if (!(flow.config() == impl_->flow.config())) {
    throw InvalidArgument("CudaTrainer::copy_to: the flow has another architecture");
  }
  cuda_detail::DeviceGuard guard(impl_->device);
  NFCAL_CUDA_CHECK(cudaMemcpy(flow.parameters().data(), impl_->params.data(),
                              num_parameters() * sizeof(float), cudaMemcpyDeviceToHost));
  flow.buffers() = impl_->flow.buffers();
  flow.set_standardization(impl_->flow.standardization());
}

}  // namespace nfcal
