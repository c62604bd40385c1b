// Little-endian encoding of integers and arrays for nfcal's binary files, independent of the
// host's byte order.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace nfcal::io {

/// True on little-endian hosts, where file bytes and memory bytes agree.
inline bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

/// Reverses the bytes of each of `count` items of `size` bytes in place.
inline void swap_items(char* data, std::size_t count, std::size_t size) {
  for (std::size_t i = 0; i < count; ++i) {
    char* item = data + i * size;
    for (std::size_t b = 0; b < size / 2; ++b) std::swap(item[b], item[size - 1 - b]);
  }
}

/// Appends `count` values of an arithmetic type as little-endian bytes.
template <typename T>
void append_little_endian(std::string* out, const T* values, std::size_t count) {
  const std::size_t start = out->size();
  out->resize(start + count * sizeof(T));
  if (count == 0) return;
  std::memcpy(&(*out)[start], values, count * sizeof(T));
  if (!host_is_little_endian()) swap_items(&(*out)[start], count, sizeof(T));
}

/// Appends one value as little-endian bytes.
template <typename T>
void append_little_endian(std::string* out, T value) {
  append_little_endian(out, &value, 1);
}

/// Reads `count` little-endian values from `bytes` into `values`.
template <typename T>
void read_little_endian(const char* bytes, std::size_t count, T* values) {
  if (count == 0) return;
  std::memcpy(values, bytes, count * sizeof(T));
  if (!host_is_little_endian()) swap_items(reinterpret_cast<char*>(values), count, sizeof(T));
}

}  // namespace nfcal::io
