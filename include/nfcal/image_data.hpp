// Image data for flows: the IDX file format (MNIST, Fashion-MNIST) and the standard
// preprocessing that turns 8-bit pixels into continuous values a flow can model.
//
// Pixels p in {0, ..., 255} are dequantized, v = p + u with u ~ U(0, 1), and mapped to logit
// space, y = logit(s) with s = lambda + (1 - 2 lambda) v / 256. A flow models y. Its
// log-likelihood converts to the dequantized pixel space [0, 256)^D by the log-Jacobian
//     log p(v) = log p(y) + sum_i [ log(1 - 2 lambda) - log 256 - log s_i - log(1 - s_i) ],
// and bits per pixel are -log p(v) / (D log 2), the number image models are compared by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

namespace nfcal {

/// An IDX array of unsigned bytes: shape (items, ...) and the values in C order.
struct IdxArray {
  std::vector<std::uint32_t> shape;
  std::vector<std::uint8_t> values;

  /// shape[0] (0 for an empty shape).
  std::size_t items() const { return shape.empty() ? 0 : shape[0]; }
  /// Values per item: the product of shape[1..].
  std::size_t item_size() const;
};

/// Decodes IDX bytes (magic 0x00 0x00 0x08 ndim, big-endian uint32 sizes, then the bytes).
/// Throws FileError starting with `source_name` on a bad magic, a type other than unsigned
/// byte (0x08), or data shorter or longer than the shape says.
IdxArray decode_idx(const std::string& bytes, const std::string& source_name);

/// Reads an IDX file, gzip-compressed (as distributed) or not. Throws FileError naming `path`
/// when it cannot be read or its gzip stream is truncated, plus everything decode_idx throws.
IdxArray read_idx(const std::string& path);

/// Dequantization and the logit transform of 8-bit pixels.
struct LogitTransform {
  double lambda = 1e-6;  // keeps s away from 0 and 1
  int levels = 256;      // pixel values 0..levels-1

  /// Rows [first, first + count) of `images` (items, pixels...) as (count, pixels) values in
  /// logit space; pixel j of item i is dequantized with a uniform keyed by (seed, i, j).
  /// Throws InvalidArgument when the range passes the end or lambda is not in (0, 0.5).
  Matrix<float> forward(const IdxArray& images, std::uint64_t seed, std::size_t first,
                        std::size_t count) const;
  /// Intensities s' = (sigmoid(y) - lambda) / (1 - 2 lambda), clamped to [0, 1], for pictures.
  Matrix<float> to_unit(const Matrix<float>& y) const;
  /// Per row of y: the log-Jacobian that adds to a log density in logit space to give the
  /// log density of the dequantized pixels in [0, levels)^D (see the top of this file).
  std::vector<double> log_jacobian(const Matrix<float>& y) const;
};

/// Bits per pixel of a mean log-likelihood in nats per image of `pixels` pixels.
double bits_per_pixel(double nats_per_image, int pixels);

/// Where Fashion-MNIST is read from: $NFCAL_FASHION_MNIST_DIR, else the folder the Debian
/// package dataset-fashion-mnist installs, /usr/share/datasets/fashion-mnist.
std::string fashion_mnist_folder();

/// The Fashion-MNIST images of one split ("train": 60,000, "t10k": 10,000) in `folder`.
/// Throws FileError naming the file and saying how to install the package when it is missing.
IdxArray read_fashion_mnist_images(const std::string& folder, const std::string& split);

}  // namespace nfcal
