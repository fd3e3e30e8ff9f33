// Byte <-> value conversions for tensors read from or written to safetensors files.
#include "io/tensor_data.h"

#include <bit>
#include <cmath>
#include <string>

#include "slidesparse/core/float_formats.h"

namespace slidesparse {

float half_to_float(uint16_t bits) {
  const uint32_t sign = uint32_t(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  const uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t half_from_float(float v) {
  const uint32_t x = std::bit_cast<uint32_t>(v);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or NaN (NaN keeps a quiet mantissa bit)
    return static_cast<uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past 65504
  if (abs < 0x38800000u) {
    // Result is subnormal or zero: round |v| * 2^24 to an integer, ties to even.
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // exact (power of two)
    const float rounded = std::nearbyint(scaled);                  // default mode: RNE
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(rounded));
  }
  // Normal: drop 13 mantissa bits with round-to-nearest-even; a carry bumps the exponent.
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rest = abs & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

std::vector<float> decode_to_float(std::span<const std::byte> data, DType dtype) {
  const size_t width = static_cast<size_t>(dtype_size(dtype));
  SS_REQUIRE(data.size() % width == 0, "decode_to_float: " << data.size() << " bytes of "
                                                           << dtype_name(dtype)
                                                           << " is not a whole number of values");
  const size_t count = data.size() / width;
  std::vector<float> out(count);
  const std::byte* p = data.data();
  switch (dtype) {
    case DType::kF32:
      if (count) std::memcpy(out.data(), p, data.size());
      break;
    case DType::kF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        out[i] = half_to_float(bits);
      }
      break;
    case DType::kBF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        out[i] = std::bit_cast<float>(uint32_t(bits) << 16);
      }
      break;
    case DType::kI8:
      for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int8_t>(p[i]));
      break;
    case DType::kFP8E4M3:
      for (size_t i = 0; i < count; ++i) out[i] = to_float(fp8_e4m3_t{static_cast<uint8_t>(p[i])});
      break;
    case DType::kI32:
      for (size_t i = 0; i < count; ++i) {
        int32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        out[i] = static_cast<float>(v);
      }
      break;
  }
  return out;
}

std::vector<std::byte> encode_from_float(std::span<const float> values, DType dtype) {
  std::vector<std::byte> out(values.size() * static_cast<size_t>(dtype_size(dtype)));
  switch (dtype) {
    case DType::kF32:
      if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
      return out;
    case DType::kF16:
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t bits = half_from_float(values[i]);
        std::memcpy(out.data() + 2 * i, &bits, 2);
      }
      return out;
    case DType::kBF16:
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t bits = bf16_from_float(values[i]).bits;
        std::memcpy(out.data() + 2 * i, &bits, 2);
      }
      return out;
    default:
      throw Error("encode_from_float: cannot store floats as " + std::string(dtype_name(dtype)) +
                  " (use the quantisation functions)");
  }
}

}  // namespace slidesparse
