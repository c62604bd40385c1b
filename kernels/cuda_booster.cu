// nfcal::CudaBooster: XGBoost margins from device memory and training from device arrays.
//
// Prediction goes through XGBoosterPredictFromCudaArray with an array-interface JSON that
// names our stream, so XGBoost waits for the rows to be ready. XGBoost writes the result on
// cudaStreamPerThread into a buffer it owns until this thread's next prediction; we order our
// stream after it with an event, copy the margins out while removing the class balance
// (subtract_balance_kernel, 256 threads per block), and order cudaStreamPerThread after the
// copy, so the next prediction cannot overwrite the buffer while it is still being read.
#include <cuda_runtime.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>

#include <xgboost/c_api.h>

#include "nfcal/cuda.hpp"
#include "nfcal/device.hpp"

#include "cuda_check.cuh"

namespace nfcal {

namespace {

constexpr int kThreads = 256;

/// Throws XGBoostError with XGBoost's message when a C API call failed.
void check_xgboost(int status, const char* what) {
  if (status != 0) {
    throw XGBoostError(std::string("XGBoost ") + what + " failed: " + XGBGetLastError());
  }
}

__global__ void subtract_balance_kernel(const float* margins, std::size_t n, float balance,
                                        float* out) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = margins[i] - balance;
}

/// The array-interface stream field: 1 means the legacy default stream.
std::uintptr_t interface_stream(cudaStream_t stream) {
  return stream == nullptr ? 1 : reinterpret_cast<std::uintptr_t>(stream);
}

/// A C-contiguous float32 device array of `rows` x `cols` as array-interface JSON.
std::string array_interface(const float* data, std::size_t rows, int cols, cudaStream_t stream) {
  char text[256];
  const std::string shape =
      cols > 0 ? std::to_string(rows) + "," + std::to_string(cols) : std::to_string(rows);
  std::snprintf(text, sizeof(text),
                "{\"data\":[%" PRIuPTR
                ",true],\"shape\":[%s],\"strides\":null,"
                "\"typestr\":\"<f4\",\"version\":3,\"stream\":%" PRIuPTR "}",
                reinterpret_cast<std::uintptr_t>(data), shape.c_str(), interface_stream(stream));
  return text;
}

void set_device_params(BoosterHandle handle, int device) {
  const std::string name = "cuda:" + std::to_string(device);
  check_xgboost(XGBoosterSetParam(handle, "device", name.c_str()), "SetParam(device)");
  check_xgboost(XGBoosterSetParam(handle, "validate_parameters", "1"),
                "SetParam(validate_parameters)");
}

}  // namespace

CudaBooster::CudaBooster(void* handle, int dim, double balance, int device)
    : handle_(handle), dim_(dim), balance_(balance), device_(device) {}

CudaBooster::CudaBooster(const std::vector<char>& model, int dim, double balance, int device)
    : dim_(dim), balance_(balance), device_(device) {
  if (dim < 1) throw InvalidArgument("CudaBooster: dim must be >= 1");
  if (device < 0 || device >= cuda_device_count()) {
    throw InvalidArgument("CudaBooster: CUDA device " + std::to_string(device) +
                          " is not visible; use the CPU classifier");
  }
  BoosterHandle handle = nullptr;
  check_xgboost(XGBoosterCreate(nullptr, 0, &handle), "BoosterCreate");
  try {
    check_xgboost(XGBoosterLoadModelFromBuffer(handle, model.data(), model.size()),
                  "LoadModelFromBuffer");
    set_device_params(handle, device);
  } catch (...) {
    XGBoosterFree(handle);  // the destructor does not run for a throwing constructor
    throw;
  }
  handle_ = handle;
}

CudaBooster::~CudaBooster() {
  if (handle_ != nullptr) XGBoosterFree(handle_);
}

void CudaBooster::margins(const float* d_x, std::size_t n, float* d_out, CudaStream stream) const {
  if (n == 0) return;
  cuda_detail::DeviceGuard guard(device_);

  // In-place prediction of raw margins; XGBoost waits on our stream for the rows.
  const std::string values = array_interface(d_x, n, dim_, stream);
  const char* config =
      "{\"type\":1,\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false,"
      "\"missing\":NaN}";
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  check_xgboost(XGBoosterPredictFromCudaArray(handle_, values.c_str(), config, nullptr, &shape,
                                              &dims, &result),
                "PredictFromCudaArray");
  bst_ulong count = 1;  // the shape lives in host memory even for device predictions
  for (bst_ulong d = 0; d < dims; ++d) count *= shape[d];
  if (count != n) {
    throw XGBoostError("XGBoost returned " + std::to_string(count) + " margins for " +
                       std::to_string(n) + " rows: the model is not a binary classifier");
  }

  // Our stream after XGBoost's, the copy, then XGBoost's stream after the copy.
  cuda_detail::Event ready;
  ready.order(cudaStreamPerThread, stream);
  const unsigned blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  subtract_balance_kernel<<<blocks, kThreads, 0, stream>>>(result, n, static_cast<float>(balance_),
                                                           d_out);
  NFCAL_LAUNCH_CHECK();
  cuda_detail::Event copied;
  copied.order(stream, cudaStreamPerThread);
}

std::vector<float> CudaBooster::margins(const Matrix<float>& x) const {
  if (x.cols() != static_cast<std::size_t>(dim_)) {
    throw DataError("CudaBooster::margins: rows have " + std::to_string(x.cols()) +
                    " columns, the model has " + std::to_string(dim_));
  }
  cuda_detail::DeviceGuard guard(device_);
  cuda_detail::Stream stream;
  std::vector<float> out(x.rows());
  if (x.rows() == 0) return out;
  cuda_detail::DeviceBuffer<float> d_x(x.size(), "margin rows");
  cuda_detail::DeviceBuffer<float> d_out(x.rows(), "margins");
  d_x.upload(x.data(), x.size(), stream.get());
  margins(d_x.data(), x.rows(), d_out.data(), stream.get());
  NFCAL_CUDA_CHECK(cudaMemcpyAsync(out.data(), d_out.data(), out.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream.get()));
  stream.synchronize();
  return out;
}

std::vector<char> CudaBooster::save() const {
  bst_ulong length = 0;
  const char* bytes = nullptr;
  check_xgboost(XGBoosterSaveModelToBuffer(handle_, "{\"format\":\"ubj\"}", &length, &bytes),
                "SaveModelToBuffer");
  return std::vector<char>(bytes, bytes + length);
}

std::unique_ptr<CudaBooster> CudaBooster::train(const float* d_x, const float* d_labels,
                                                std::size_t n, int dim,
                                                const std::vector<std::string>& params, int rounds,
                                                int device) {
  if (n == 0 || dim < 1 || rounds < 1) {
    throw InvalidArgument("CudaBooster::train: needs rows, dim >= 1 and rounds >= 1");
  }
  cuda_detail::DeviceGuard guard(device);
  NFCAL_CUDA_CHECK(cudaDeviceSynchronize());  // the rows and labels must be complete

  // The class balance log(n1 / n0) from the labels, read once.
  std::vector<float> labels(n);
  NFCAL_CUDA_CHECK(cudaMemcpy(labels.data(), d_labels, n * sizeof(float), cudaMemcpyDeviceToHost));
  double positives = 0;
  for (const float label : labels) positives += label > 0.5f ? 1.0 : 0.0;
  if (positives == 0 || positives == static_cast<double>(n)) {
    throw DataError("CudaBooster::train: labels must contain both classes");
  }
  const double balance = std::log(positives / (static_cast<double>(n) - positives));

  // A device DMatrix over the caller's arrays, then the booster.
  DMatrixHandle matrix = nullptr;
  const std::string rows_json = array_interface(d_x, n, dim, nullptr);
  check_xgboost(
      XGDMatrixCreateFromCudaArrayInterface(rows_json.c_str(), "{\"missing\":NaN}", &matrix),
      "DMatrixCreateFromCudaArrayInterface");
  BoosterHandle handle = nullptr;
  try {
    const std::string labels_json = array_interface(d_labels, n, 0, nullptr);
    check_xgboost(XGDMatrixSetInfoFromInterface(matrix, "label", labels_json.c_str()),
                  "DMatrixSetInfoFromInterface(label)");
    check_xgboost(XGBoosterCreate(&matrix, 1, &handle), "BoosterCreate");
    set_device_params(handle, device);
    check_xgboost(XGBoosterSetParam(handle, "objective", "binary:logistic"), "SetParam");
    for (const std::string& p : params) {
      const std::size_t eq = p.find('=');
      if (eq == std::string::npos) {
        throw InvalidArgument("CudaBooster::train: parameter '" + p + "' is not name=value");
      }
      check_xgboost(XGBoosterSetParam(handle, p.substr(0, eq).c_str(), p.substr(eq + 1).c_str()),
                    ("SetParam(" + p + ")").c_str());
    }
    for (int round = 0; round < rounds; ++round) {
      check_xgboost(XGBoosterUpdateOneIter(handle, round, matrix), "UpdateOneIter");
    }
  } catch (...) {
    if (handle != nullptr) XGBoosterFree(handle);
    XGDMatrixFree(matrix);
    throw;
  }
  XGDMatrixFree(matrix);
  return std::unique_ptr<CudaBooster>(new CudaBooster(handle, dim, balance, device));
}

}  // namespace nfcal
