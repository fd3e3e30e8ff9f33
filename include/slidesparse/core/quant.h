// Symmetric row-wise quantisation reference (per-output-channel for weights, per-token for
// activations; both are "one scale per row of a row-major matrix"). The GPU kernels must
// reproduce this arithmetic exactly, so it is spelled out:
//   absmax = max_k |v[k]|                                (over the un-lifted row, in float)
//   scale  = max(absmax, kMinAbsMax) / qmax               (IEEE float division)
//   q[k]   = INT8: clamp(round_half_even(v[k] / scale), -128, 127)
//            E4M3: e4m3_from_float(v[k] / scale)          (RNE, saturating at +-448)
// with qmax = 127 (INT8) or 448 (E4M3) and v / scale an IEEE float division (__fdiv_rn on GPU).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "slidesparse/core/float_formats.h"
#include "slidesparse/dtype.h"

namespace slidesparse {

inline constexpr float kMinAbsMax = 1e-12f;

// 127 for kI8, 448 for kFP8E4M3; throws Error for other dtypes.
float quant_max(DType dtype);
// max(absmax, kMinAbsMax) / quant_max(dtype).
float quant_scale(float absmax, DType dtype);
int8_t quantize_int8(float v, float scale);
fp8_e4m3_t quantize_e4m3(float v, float scale);

template <class Code>
struct QuantizedRows {
  std::vector<Code> codes;    // [rows, cols] row-major
  std::vector<float> scales;  // [rows]
  int64_t rows = 0;
  int64_t cols = 0;
};

QuantizedRows<int8_t> quantize_rows_int8(std::span<const float> v, int64_t rows, int64_t cols);
QuantizedRows<fp8_e4m3_t> quantize_rows_e4m3(std::span<const float> v, int64_t rows,
                                             int64_t cols);

std::vector<float> to_float_vector(std::span<const bf16_t> v);
std::vector<float> to_float_vector(std::span<const fp8_e4m3_t> v);
std::vector<float> to_float_vector(std::span<const int8_t> v);
std::vector<bf16_t> to_bf16_vector(std::span<const float> v);

}  // namespace slidesparse
