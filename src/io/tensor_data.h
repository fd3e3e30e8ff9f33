// Raw tensor bytes (as stored in safetensors: little-endian, possibly unaligned) to and from typed
// host vectors. Also the IEEE half conversions, which the CPU core does not need elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/error.h"

namespace slidesparse {

// IEEE binary16 <-> float; float -> half rounds to nearest even, overflows to +-inf, keeps NaN.
float half_to_float(uint16_t bits);
uint16_t half_from_float(float v);

// Copies raw bytes into a typed vector (memcpy: the source may be unaligned).
template <class T>
std::vector<T> copy_values(std::span<const std::byte> data) {
  SS_REQUIRE(data.size() % sizeof(T) == 0,
             "copy_values: " << data.size() << " bytes is not a multiple of " << sizeof(T));
  std::vector<T> out(data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), data.data(), data.size());
  return out;
}

// Any of the six dtypes as float (I32 converted value by value).
std::vector<float> decode_to_float(std::span<const std::byte> data, DType dtype);
// Float values stored as F32, F16 or BF16 (RNE); Error for other dtypes.
std::vector<std::byte> encode_from_float(std::span<const float> values, DType dtype);

}  // namespace slidesparse
