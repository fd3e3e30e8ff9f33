// Storage types for bf16 and FP8 E4M3 on the host, with exact conversions. Both hold raw bits so
// host buffers can be copied byte for byte to the GPU (__nv_bfloat16, __nv_fp8_e4m3).
// Conversions from float round to nearest, ties to even; E4M3 saturates finite values at +-448
// (the SATFINITE behaviour of the GPU conversion) and maps every NaN to 0x7F; bf16 maps every
// NaN to the canonical 0x7FFF. Both match CUDA's __nv_cvt_float_to_fp8 / __float2bfloat16_rn bit
// for bit over all 2^32 floats. Decoding 0x7F / 0xFF gives NaN.
#pragma once

#include <cstdint>

namespace slidesparse {

struct bf16_t {
  uint16_t bits = 0;
  bool operator==(const bf16_t&) const = default;
};

struct fp8_e4m3_t {
  uint8_t bits = 0;
  bool operator==(const fp8_e4m3_t&) const = default;
};

inline constexpr float kE4M3Max = 448.0f;

float to_float(bf16_t v);
bf16_t bf16_from_float(float v);

float to_float(fp8_e4m3_t v);
fp8_e4m3_t e4m3_from_float(float v);

inline float to_float(float v) { return v; }
inline float to_float(int8_t v) { return static_cast<float>(v); }

// "Is this element a zero" for pattern checks: +0 and -0 are zeros, NaN is not.
template <class T>
bool is_zero(T v) {
  return to_float(v) == 0.0f;
}

}  // namespace slidesparse
