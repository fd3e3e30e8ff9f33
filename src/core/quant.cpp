// Symmetric row-wise quantisation reference, spelled exactly as quant.h says so that the GPU
// kernels can match it bit for bit: float absmax, one IEEE division for the scale, one IEEE
// division per element (never a multiply by a reciprocal), round half to even.
#include "slidesparse/core/quant.h"

#include <cmath>

#include "core/shape_check.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

// max_k |v[k]| with fmaxf semantics (a NaN element is ignored, as on the GPU).
float row_absmax(const float* row, int64_t cols) {
  float absmax = 0.0f;
  for (int64_t c = 0; c < cols; ++c) absmax = std::fmax(absmax, std::fabs(row[c]));
  return absmax;
}

// Round half to even without depending on the FPU rounding mode (__float2int_rn on the GPU).
float round_half_even(float q) {
  const float whole = std::floor(q);
  const float frac = q - whole;  // exact
  if (frac > 0.5f) return whole + 1.0f;
  if (frac < 0.5f) return whole;
  return std::fmod(whole, 2.0f) == 0.0f ? whole : whole + 1.0f;
}

template <class Code, class QuantizeOne>
QuantizedRows<Code> quantize_rows(std::span<const float> v, int64_t rows, int64_t cols, DType dtype,
                                  const char* function, QuantizeOne quantize_one) {
  detail::require_matrix(function, "input", v.size(), rows, cols);
  QuantizedRows<Code> q;
  q.rows = rows;
  q.cols = cols;
  q.codes.resize(static_cast<size_t>(rows * cols));
  q.scales.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = v.data() + r * cols;
    const float scale = quant_scale(row_absmax(row, cols), dtype);
    q.scales[static_cast<size_t>(r)] = scale;
    Code* out = q.codes.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c) out[c] = quantize_one(row[c], scale);
  }
  return q;
}

}  // namespace

float quant_max(DType dtype) {
  switch (dtype) {
    case DType::kI8:
      return 127.0f;
    case DType::kFP8E4M3:
      return kE4M3Max;
    default:
      break;
  }
  throw Error("quant_max: no quantisation for dtype '" + std::string(dtype_name(dtype)) +
              "' (int8 and fp8 only)");
}

float quant_scale(float absmax, DType dtype) {
  return std::fmax(absmax, kMinAbsMax) / quant_max(dtype);
}

int8_t quantize_int8(float v, float scale) {
  const float q = v / scale;
  if (std::isnan(q)) return 0;  // the GPU's float -> int conversion maps NaN to 0
  const float rounded = round_half_even(q);
  if (rounded >= 127.0f) return 127;
  if (rounded <= -128.0f) return -128;
  return static_cast<int8_t>(rounded);
}

fp8_e4m3_t quantize_e4m3(float v, float scale) { return e4m3_from_float(v / scale); }

QuantizedRows<int8_t> quantize_rows_int8(std::span<const float> v, int64_t rows, int64_t cols) {
  return quantize_rows<int8_t>(v, rows, cols, DType::kI8, "quantize_rows_int8", quantize_int8);
}

QuantizedRows<fp8_e4m3_t> quantize_rows_e4m3(std::span<const float> v, int64_t rows, int64_t cols) {
  return quantize_rows<fp8_e4m3_t>(v, rows, cols, DType::kFP8E4M3, "quantize_rows_e4m3",
                                   quantize_e4m3);
}

std::vector<float> to_float_vector(std::span<const bf16_t> v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

std::vector<float> to_float_vector(std::span<const fp8_e4m3_t> v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

std::vector<float> to_float_vector(std::span<const int8_t> v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

std::vector<bf16_t> to_bf16_vector(std::span<const float> v) {
  std::vector<bf16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_from_float(v[i]);
  return out;
}

}  // namespace slidesparse
