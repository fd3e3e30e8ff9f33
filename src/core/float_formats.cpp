// Exact host conversions between float and bf16 / FP8 E4M3, bit for bit what the GPU conversions
// produce (__float2bfloat16_rn, __nv_cvt_float_to_fp8(..., __NV_SATFINITE, __NV_E4M3)).
// Rounding is done on the integer bit patterns, so it does not depend on the FPU rounding mode.
#include "slidesparse/core/float_formats.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace slidesparse {
namespace {

constexpr uint32_t kF32SignMask = 0x80000000u;
constexpr uint32_t kF32AbsMask = 0x7FFFFFFFu;
constexpr uint32_t kF32ExpMask = 0x7F800000u;
constexpr uint16_t kBf16CanonicalNaN = 0x7FFF;

// E4M3: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, S.1111.111 is NaN.
constexpr int kE4M3Bias = 7;
constexpr int kE4M3MantBits = 3;
constexpr uint8_t kE4M3MaxFinite = 0x7E;  // 448
constexpr uint8_t kE4M3NaN = 0x7F;
// Smallest normal E4M3 value 2^-6; subnormals are multiples of 2^-9.
constexpr float kE4M3MinNormal = 0.015625f;
constexpr float kE4M3SubnormalStep = 0.001953125f;  // 2^-9

bool f32_is_nan(uint32_t bits) { return (bits & kF32AbsMask) > kF32ExpMask; }

}  // namespace

float to_float(bf16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v.bits) << 16); }

bf16_t bf16_from_float(float v) {
  uint32_t bits = std::bit_cast<uint32_t>(v);
  // Every NaN becomes the canonical 0x7FFF, sign dropped, as CUDA's conversion does (truncation
  // alone could also turn a NaN with a low payload into an infinity).
  if (f32_is_nan(bits)) return bf16_t{kBf16CanonicalNaN};
  // Round to nearest even on the 16 dropped bits; a carry correctly bumps the exponent and
  // turns the largest values into infinity, as the GPU does.
  uint32_t lsb = (bits >> 16) & 1u;
  bits += 0x7FFFu + lsb;
  return bf16_t{static_cast<uint16_t>(bits >> 16)};
}

float to_float(fp8_e4m3_t v) {
  const bool negative = (v.bits & 0x80u) != 0;
  const int exponent = (v.bits >> kE4M3MantBits) & 0xF;
  const int mantissa = v.bits & 0x7;
  float magnitude;
  if (exponent == 0xF && mantissa == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = static_cast<float>(mantissa) * kE4M3SubnormalStep;
  } else {
    magnitude = std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - kE4M3Bias);
  }
  return negative ? -magnitude : magnitude;
}

fp8_e4m3_t e4m3_from_float(float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  const uint8_t sign = static_cast<uint8_t>((bits & kF32SignMask) >> 24);
  // Every NaN becomes 0x7F, sign dropped: CUDA's float conversion canonicalises NaN first.
  if (f32_is_nan(bits)) return fp8_e4m3_t{kE4M3NaN};
  const uint32_t abs_bits = bits & kF32AbsMask;
  const float magnitude = std::bit_cast<float>(abs_bits);

  uint32_t code;
  if (magnitude < kE4M3MinNormal) {
    // Subnormal range: count steps of 2^-9 (exact scaling by a power of two), round half to
    // even. Rounding up to 8 steps yields code 0x08, which is exactly the smallest normal.
    const float steps = magnitude / kE4M3SubnormalStep;
    const float whole = std::floor(steps);
    const float frac = steps - whole;  // exact: steps < 8
    code = static_cast<uint32_t>(whole);
    if (frac > 0.5f || (frac == 0.5f && (code & 1u) != 0)) ++code;
  } else if (abs_bits >= kF32ExpMask) {
    code = kE4M3MaxFinite;  // +-inf saturates (SATFINITE)
  } else {
    // Normal range: keep 3 of float's 23 mantissa bits, round half to even on the other 20;
    // a carry moves into the exponent. Then rebias the exponent from 127 to 7.
    constexpr int kDropped = 23 - kE4M3MantBits;
    const uint32_t lsb = (abs_bits >> kDropped) & 1u;
    const uint32_t rounded = (abs_bits + ((1u << (kDropped - 1)) - 1u) + lsb) >> kDropped;
    const uint32_t rebias = static_cast<uint32_t>(127 - kE4M3Bias) << kE4M3MantBits;
    code = rounded - rebias;                           // magnitude >= 2^-6 keeps this positive
    if (code > kE4M3MaxFinite) code = kE4M3MaxFinite;  // saturate finite overflow at 448
  }
  return fp8_e4m3_t{static_cast<uint8_t>(code | sign)};
}

}  // namespace slidesparse
