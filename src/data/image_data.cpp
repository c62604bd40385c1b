// IDX files, Fashion-MNIST's location, and the dequantizing logit transform of pixels.
#include "nfcal/image_data.hpp"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"

#include "common/philox.hpp"

namespace nfcal {
namespace {

constexpr unsigned char kUnsignedByte = 0x08;
constexpr std::size_t kMaxDims = 8;
constexpr std::uint32_t kDequantizeStream = 0x64657175u;  // "dequ"
constexpr const char* kDebianFashionFolder = "/usr/share/datasets/fashion-mnist";

// log(1 + exp(x)) without overflow.
double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// The whole decompressed contents of a gzip stream; FileError when it is cut short or corrupt.
std::string gunzip(const std::string& bytes, const std::string& path) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
    throw FileError(path + ": cannot start gzip decompression");
  }
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  std::vector<char> buffer(1 << 20);
  int status = Z_OK;
  while (status == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
    stream.avail_out = static_cast<uInt>(buffer.size());
    status = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer.data(), buffer.size() - stream.avail_out);
    if (status == Z_BUF_ERROR && stream.avail_in == 0) break;
  }
  inflateEnd(&stream);
  if (status != Z_STREAM_END) {
    throw FileError(path + ": gzip stream is " +
                    (status == Z_BUF_ERROR || status == Z_OK ? std::string("truncated")
                                                             : std::string("corrupted")));
  }
  return out;
}

std::uint32_t big_endian32(const std::string& bytes, std::size_t at) {
  const auto b = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + k]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

std::size_t IdxArray::item_size() const {
  std::size_t size = 1;
  for (std::size_t k = 1; k < shape.size(); ++k) size *= shape[k];
  return size;
}

IdxArray decode_idx(const std::string& bytes, const std::string& source_name) {
  // The magic: two zero bytes, the element type, the number of dimensions.
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    throw FileError(source_name + ": not an IDX file (bad magic number)");
  }
  const auto type = static_cast<unsigned char>(bytes[2]);
  const auto dims = static_cast<std::size_t>(static_cast<unsigned char>(bytes[3]));
  if (type != kUnsignedByte) {
    throw FileError(source_name + ": IDX element type 0x" +
                    std::string(1, "0123456789abcdef"[type >> 4]) +
                    std::string(1, "0123456789abcdef"[type & 15]) +
                    " is not supported; only unsigned bytes (0x08) are");
  }
  if (dims == 0 || dims > kMaxDims) {
    throw FileError(source_name + ": IDX file with " + std::to_string(dims) + " dimensions");
  }
  if (bytes.size() < 4 + 4 * dims) throw FileError(source_name + ": IDX header is truncated");

  // The sizes, then exactly as many bytes as they multiply to.
  IdxArray array;
  std::size_t count = 1;
  for (std::size_t k = 0; k < dims; ++k) {
    array.shape.push_back(big_endian32(bytes, 4 + 4 * k));
    count *= array.shape.back();
  }
  const std::size_t offset = 4 + 4 * dims;
  const std::size_t present = bytes.size() - offset;
  if (present != count) {
    throw FileError(source_name + ": IDX data is " +
                    (present < count ? std::string("truncated") : std::string("too long")) +
                    ": the shape needs " + std::to_string(count) + " bytes, the file has " +
                    std::to_string(present));
  }
  array.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(offset), bytes.end());
  return array;
}

IdxArray read_idx(const std::string& path) {
  std::string bytes = read_file_bytes(path);
  const bool gzipped = bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
                       static_cast<unsigned char>(bytes[1]) == 0x8b;
  if (gzipped) bytes = gunzip(bytes, path);
  return decode_idx(bytes, path);
}

Matrix<float> LogitTransform::forward(const IdxArray& images, std::uint64_t seed, std::size_t first,
                                      std::size_t count) const {
  if (!(lambda > 0 && lambda < 0.5) || levels < 2) {
    throw InvalidArgument("LogitTransform: lambda must be in (0, 0.5) and levels at least 2");
  }
  if (first + count > images.items()) {
    throw InvalidArgument("LogitTransform::forward: rows " + std::to_string(first) + ".." +
                          std::to_string(first + count) + " pass the " +
                          std::to_string(images.items()) + " images");
  }

  // v = p + u, s = lambda + (1 - 2 lambda) v / levels, y = log s - log(1 - s).
  const std::size_t pixels = images.item_size();
  Matrix<float> y(count, pixels);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(count); ++r) {
    const std::size_t item = first + static_cast<std::size_t>(r);
    const std::uint8_t* p = images.values.data() + item * pixels;
    rng::Words4 words{};
    for (std::size_t j = 0; j < pixels; ++j) {
      if (j % 4 == 0) {
        words = rng::keyed_words(seed, item, static_cast<std::uint32_t>(j / 4), kDequantizeStream);
      }
      const double u = rng::uniform_open01(words.w[j % 4]);
      const double s = lambda + (1.0 - 2.0 * lambda) * (p[j] + u) / levels;
      y(static_cast<std::size_t>(r), j) = static_cast<float>(std::log(s) - std::log1p(-s));
    }
  }
  return y;
}

Matrix<float> LogitTransform::to_unit(const Matrix<float>& y) const {
  Matrix<float> unit(y.rows(), y.cols());
  for (std::size_t k = 0; k < y.size(); ++k) {
    const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(y.data()[k])));
    unit.data()[k] = static_cast<float>(std::clamp((s - lambda) / (1.0 - 2.0 * lambda), 0.0, 1.0));
  }
  return unit;
}

std::vector<double> LogitTransform::log_jacobian(const Matrix<float>& y) const {
  // Per pixel: log(dy/dv) = log(1 - 2 lambda) - log(levels) - log s - log(1 - s), where
  // -log s = softplus(-y) and -log(1 - s) = softplus(y).
  const double constant = std::log1p(-2.0 * lambda) - std::log(static_cast<double>(levels));
  std::vector<double> out(y.rows());
  for (std::size_t r = 0; r < y.rows(); ++r) {
    double sum = 0;
    for (std::size_t j = 0; j < y.cols(); ++j) {
      const double v = y(r, j);
      sum += constant + softplus(-v) + softplus(v);
    }
    out[r] = sum;
  }
  return out;
}

double bits_per_pixel(double nats_per_image, int pixels) {
  return -nats_per_image / (static_cast<double>(pixels) * std::log(2.0));
}

std::string fashion_mnist_folder() {
  const char* env = std::getenv("NFCAL_FASHION_MNIST_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(kDebianFashionFolder);
}

IdxArray read_fashion_mnist_images(const std::string& folder, const std::string& split) {
  if (split != "train" && split != "t10k") {
    throw InvalidArgument("Fashion-MNIST split '" + split + "': use train or t10k");
  }
  const std::string path = folder + "/" + split + "-images-idx3-ubyte.gz";
  if (::access(path.c_str(), R_OK) != 0) {
    throw FileError(path +
                    ": Fashion-MNIST is not installed there; install it with "
                    "'apt-get install dataset-fashion-mnist' or set "
                    "NFCAL_FASHION_MNIST_DIR to a folder holding its IDX files");
  }
  return read_idx(path);
}

}  // namespace nfcal
