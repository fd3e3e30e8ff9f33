// Reference GEMMs in the layer's orientation: C[m, n] = sum_k A[m, k] * B[n, k] (A = activations
// [M, K], B = weights [N, K], both row-major), and the dequant epilogue. 64-bit indexing.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "slidesparse/core/float_formats.h"

namespace slidesparse {

// Exact int32 accumulation (throws Error if |sum| could exceed int32 for this K).
std::vector<int32_t> gemm_int8_ref(std::span<const int8_t> a, std::span<const int8_t> b, int64_t m,
                                   int64_t n, int64_t k);
// Accumulates in double, rounds once to float.
std::vector<float> gemm_float_ref(std::span<const float> a, std::span<const float> b, int64_t m,
                                  int64_t n, int64_t k);
std::vector<float> gemm_e4m3_ref(std::span<const fp8_e4m3_t> a, std::span<const fp8_e4m3_t> b,
                                 int64_t m, int64_t n, int64_t k);
std::vector<float> gemm_bf16_ref(std::span<const bf16_t> a, std::span<const bf16_t> b, int64_t m,
                                 int64_t n, int64_t k);

// y[m, n] = acc[m, n] * scale_per_token[m] * scale_per_channel[n] + bias[n], in float.
// scale_per_token / scale_per_channel / bias may be empty (factor 1, no bias).
std::vector<float> dequant_ref(std::span<const float> acc, int64_t m, int64_t n,
                               std::span<const float> scale_per_token,
                               std::span<const float> scale_per_channel,
                               std::span<const float> bias);
std::vector<float> dequant_ref(std::span<const int32_t> acc, int64_t m, int64_t n,
                               std::span<const float> scale_per_token,
                               std::span<const float> scale_per_channel,
                               std::span<const float> bias);

// The epilogue with a residual folded in (CONTRACTS.md steps 5 and 8): one bf16 rounding,
//   out[m, n] = bf16(float(residual[m, n]) + ((acc * s_x[m]) * s_w[n] + b[n])).
// residual is bf16 [m, n]; the scales and bias may be empty as for dequant_ref.
std::vector<bf16_t> dequant_residual_ref(std::span<const float> acc, int64_t m, int64_t n,
                                         std::span<const float> scale_per_token,
                                         std::span<const float> scale_per_channel,
                                         std::span<const float> bias,
                                         std::span<const bf16_t> residual);
std::vector<bf16_t> dequant_residual_ref(std::span<const int32_t> acc, int64_t m, int64_t n,
                                         std::span<const float> scale_per_token,
                                         std::span<const float> scale_per_channel,
                                         std::span<const float> bias,
                                         std::span<const bf16_t> residual);
// y[m, n] = float(residual[m, n]) + (acc * scale_per_token[m] * scale_per_channel[n] + bias[n]):
// the residual-add epilogue before its one bf16 rounding (launch_dequant with a residual).
// residual: bf16 [m, n] packed; the scales and bias as in dequant_ref.
std::vector<float> dequant_residual_unrounded_ref(std::span<const float> acc, int64_t m, int64_t n,
                                        std::span<const float> scale_per_token,
                                        std::span<const float> scale_per_channel,
                                        std::span<const float> bias,
                                        std::span<const bf16_t> residual);
std::vector<float> dequant_residual_unrounded_ref(std::span<const int32_t> acc, int64_t m, int64_t n,
                                        std::span<const float> scale_per_token,
                                        std::span<const float> scale_per_channel,
                                        std::span<const float> bias,
                                        std::span<const bf16_t> residual);

}  // namespace slidesparse
