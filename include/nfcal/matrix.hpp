// A dense row-major matrix: the one container for batches of rows in nfcal's host API.
#pragma once

#include <cstddef>
#include <vector>

#include "nfcal/error.hpp"

namespace nfcal {

/// Rows of `cols` values each, stored contiguously row after row.
template <typename T>
class Matrix {
 public:
  Matrix() = default;
  Matrix(std::size_t rows, std::size_t cols, T fill = T(0))
      : rows_(rows), cols_(cols), values_(rows * cols, fill) {}
  Matrix(std::size_t rows, std::size_t cols, std::vector<T> values)
      : rows_(rows), cols_(cols), values_(std::move(values)) {
    if (values_.size() != rows * cols) {
      throw InvalidArgument("Matrix: " + std::to_string(values_.size()) + " values do not fill " +
                            std::to_string(rows) + " x " + std::to_string(cols));
    }
  }

  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  std::size_t size() const noexcept { return values_.size(); }
  bool empty() const noexcept { return values_.empty(); }

  T* data() noexcept { return values_.data(); }
  const T* data() const noexcept { return values_.data(); }
  T* row(std::size_t r) noexcept { return values_.data() + r * cols_; }
  const T* row(std::size_t r) const noexcept { return values_.data() + r * cols_; }
  T& operator()(std::size_t r, std::size_t c) noexcept { return values_[r * cols_ + c]; }
  const T& operator()(std::size_t r, std::size_t c) const noexcept {
    return values_[r * cols_ + c];
  }
  const std::vector<T>& values() const noexcept { return values_; }

  /// A copy with every value converted to U.
  template <typename U>
  Matrix<U> cast() const {
    return Matrix<U>(rows_, cols_, std::vector<U>(values_.begin(), values_.end()));
  }

  /// Rows [first, first + count) as a new matrix.
  Matrix slice_rows(std::size_t first, std::size_t count) const {
    if (first + count > rows_) throw InvalidArgument("Matrix::slice_rows: range past the end");
    return Matrix(
        count, cols_,
        std::vector<T>(values_.begin() + static_cast<std::ptrdiff_t>(first * cols_),
                       values_.begin() + static_cast<std::ptrdiff_t>((first + count) * cols_)));
  }

 private:
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::vector<T> values_;
};

}  // namespace nfcal
