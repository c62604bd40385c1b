// Exceptions thrown by nfcal. Every error carries a message that names the file, row, field or
// option at fault; the command line tool prints it to stderr and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace nfcal {

/// Base class of every exception nfcal throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// A configuration value or function argument is out of range or inconsistent.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Input data is unusable: wrong shape, no rows, NaN or Inf (the message names row and column).
class DataError : public Error {
 public:
  using Error::Error;
};

/// A file cannot be opened, read or written (the message names the file).
class FileError : public Error {
 public:
  using Error::Error;
};

/// A model file is not an nfcal model, is of another format version, or is truncated or
/// corrupted. kind() tells which, so callers and tests can react to each case.
class ModelFormatError : public Error {
 public:
  enum class Kind { kNotAModel, kUnsupportedVersion, kTruncated, kCorrupted, kWrongKind };

  ModelFormatError(Kind kind, const std::string& message) : Error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

/// XGBoost's C API reported a failure; the message carries XGBoost's own text.
class XGBoostError : public Error {
 public:
  using Error::Error;
};

/// A CUDA, cuBLAS, cuRAND or CUB call failed; the message carries file, line and CUDA's text.
class CudaError : public Error {
 public:
  using Error::Error;
};

/// Rejection sampling stopped at its candidate cap because acceptance was too low.
class SamplingError : public Error {
 public:
  using Error::Error;
};

}  // namespace nfcal
