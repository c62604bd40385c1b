// IDX files and the dequantizing logit transform of pixels, checked on files the tests write
// and against finite differences and numerical integration.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"
#include "nfcal/image_data.hpp"

namespace nfcal {
namespace {

// The bytes of an IDX file of unsigned bytes with the given shape and values.
std::string idx_bytes(const std::vector<std::uint32_t>& shape,
                      const std::vector<std::uint8_t>& values, unsigned char type = 0x08) {
  std::string bytes = {0, 0, static_cast<char>(type), static_cast<char>(shape.size())};
  for (const std::uint32_t size : shape) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes += static_cast<char>((size >> shift) & 255);
  }
  bytes.append(values.begin(), values.end());
  return bytes;
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + name; }

// Writes `bytes` gzip-compressed, as the datasets are distributed (with the gzip tool).
void write_gzip(const std::string& path, const std::string& bytes) {
  write_file_atomically(path + ".raw", bytes);
  ASSERT_EQ(std::system(("gzip -c '" + path + ".raw' > '" + path + "'").c_str()), 0);
}

// Expects `call` to throw FileError whose message holds `part`.
template <typename F>
void expect_file_error(F call, const std::string& part) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one mentioning '" << part << "'";
  } catch (const FileError& error) {
    EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
  }
}

std::vector<std::uint8_t> ramp(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 37) % 256);
  return v;
}

TEST(IdxTest, DecodesShapeAndValuesOfAnImageFile) {
  const std::vector<std::uint8_t> values = ramp(3 * 2 * 4);
  const IdxArray a = decode_idx(idx_bytes({3, 2, 4}, values), "images");
  EXPECT_EQ(a.shape, (std::vector<std::uint32_t>{3, 2, 4}));
  EXPECT_EQ(a.items(), 3u);
  EXPECT_EQ(a.item_size(), 8u);
  EXPECT_EQ(a.values, values);
}

TEST(IdxTest, ReadsGzippedAndPlainFilesAlike) {
  const std::string bytes = idx_bytes({5, 3, 3}, ramp(45));
  write_gzip(temp_path("plain.gz"), bytes);
  write_file_atomically(temp_path("plain.idx"), bytes);
  EXPECT_EQ(read_idx(temp_path("plain.gz")).values, ramp(45));
  EXPECT_EQ(read_idx(temp_path("plain.idx")).values, ramp(45));
}

TEST(IdxTest, BadMagicWrongTypeAndWrongLengthsAreNamed) {
  std::string bad = idx_bytes({2, 2}, ramp(4));
  bad[0] = 7;
  expect_file_error([&] { decode_idx(bad, "bad.idx"); }, "bad.idx: not an IDX file");
  expect_file_error(
      [&] {
        decode_idx(idx_bytes({2, 2}, ramp(4), 0x0D), "f.idx");
      },
      "only unsigned bytes");
  expect_file_error(
      [&] {
        decode_idx(idx_bytes({2, 2}, ramp(3)), "short.idx");
      },
      "truncated: the shape needs 4 bytes, the file has 3");
  expect_file_error([&] { decode_idx(idx_bytes({2, 2}, ramp(5)), "long.idx"); }, "too long");
  expect_file_error([&] { decode_idx(std::string("\0\0\x08\x03\0\0", 6), "head.idx"); },
                    "header is truncated");
}

TEST(IdxTest, ATruncatedGzipStreamIsReportedAsSuch) {
  const std::string path = temp_path("cut.gz");
  write_gzip(path, idx_bytes({100, 10}, ramp(1000)));
  const std::string whole = read_file_bytes(path);
  write_file_atomically(path, whole.substr(0, whole.size() / 2));
  expect_file_error([&] { read_idx(path); }, "truncated");
}

TEST(LogitTransformTest, DequantizedValuesStayInsideTheirPixelsCell) {
  IdxArray images;
  images.shape = {4, 16};
  images.values = ramp(64);
  images.values[0] = 0;
  images.values[1] = 255;
  const LogitTransform transform;
  const Matrix<float> y = transform.forward(images, 7, 0, 4);
  const Matrix<float> unit = transform.to_unit(y);
  for (std::size_t i = 0; i < 64; ++i) {
    const double v = unit.data()[i] * 256.0;
    EXPECT_GE(v, images.values[i] - 1e-3) << i;
    EXPECT_LE(v, images.values[i] + 1 + 1e-3) << i;
  }
  // Keyed by (seed, image): the same seed repeats, another seed moves the noise.
  EXPECT_EQ(transform.forward(images, 7, 0, 4).values(), y.values());
  EXPECT_NE(transform.forward(images, 8, 0, 4).values(), y.values());
  EXPECT_EQ(transform.forward(images, 7, 2, 1).values(),
            std::vector<float>(y.row(2), y.row(2) + 16));
}

// v(y) = 256 (sigmoid(y) - lambda) / (1 - 2 lambda): pixel value as a function of logit value.
double pixel_of(double y, double lambda) {
  return 256.0 * (1.0 / (1.0 + std::exp(-y)) - lambda) / (1.0 - 2.0 * lambda);
}

TEST(LogitTransformTest, LogJacobianMatchesFiniteDifferencesOfTheInverseMap) {
  const LogitTransform transform;
  const std::vector<float> ys = {-13.0f, -4.5f, -0.3f, 0.0f, 2.2f, 9.0f};
  const Matrix<float> y(1, ys.size(), ys);
  double expected = 0;
  for (const float v : ys) {
    const double h = 1e-4;
    const double dv_dy =
        (pixel_of(v + h, transform.lambda) - pixel_of(v - h, transform.lambda)) / (2 * h);
    expected -= std::log(dv_dy);  // log dy/dv
  }
  EXPECT_NEAR(transform.log_jacobian(y)[0], expected, 1e-5 * std::abs(expected) + 1e-6);
}

TEST(LogitTransformTest, UniformPixelsIntegrateToOneInLogitSpaceAndCostEightBitsPerPixel) {
  // If v ~ U[0, 256), log p(y) = -log 256 - log_jacobian(y); its integral over y must be 1.
  const LogitTransform transform;
  const double lo = -std::log((1 - transform.lambda) / transform.lambda);
  const double hi = -lo;
  const int steps = 200000;
  double integral = 0;
  for (int i = 0; i < steps; ++i) {
    const float y = static_cast<float>(lo + (hi - lo) * (i + 0.5) / steps);
    const double log_jac = transform.log_jacobian(Matrix<float>(1, 1, std::vector<float>{y}))[0];
    integral += std::exp(-std::log(256.0) - log_jac) * (hi - lo) / steps;
  }
  EXPECT_NEAR(integral, 1.0, 2e-3);
  EXPECT_DOUBLE_EQ(bits_per_pixel(-784 * std::log(256.0), 784), 8.0);
}

TEST(FashionMnistTest, AMissingFolderSaysHowToInstallTheDataset) {
  expect_file_error([] { read_fashion_mnist_images("/nonexistent-folder", "train"); },
                    "apt-get install dataset-fashion-mnist");
  ::setenv("NFCAL_FASHION_MNIST_DIR", "/somewhere", 1);
  EXPECT_EQ(fashion_mnist_folder(), "/somewhere");
  ::unsetenv("NFCAL_FASHION_MNIST_DIR");
  EXPECT_EQ(fashion_mnist_folder(), "/usr/share/datasets/fashion-mnist");
}

}  // namespace
}  // namespace nfcal
