// Reference GEMMs C[m, n] = sum_k A[m, k] * B[n, k] and the dequant epilogue (gemm_ref.h).
// Compiled with -ffp-contract=off: dequant_ref's three float operations must each round on their
// own, as the GPU's __fmul_rn / __fadd_rn do; a fused multiply-add would change the last bit.
#include "slidesparse/core/gemm_ref.h"

#include <limits>

#include "core/shape_check.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

void require_gemm_operands(const char* function, size_t a_size, size_t b_size, int64_t m, int64_t n,
                           int64_t k) {
  detail::require_matrix(function, "A (activations [M, K])", a_size, m, k);
  detail::require_matrix(function, "B (weights [N, K])", b_size, n, k);
  detail::checked_elements(function, "C ([M, N])", m, n);
}

// Exact products, summed in double, rounded once to float.
std::vector<float> gemm_double_acc(const float* a, const float* b, int64_t m, int64_t n,
                                   int64_t k) {
  std::vector<float> c(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    const float* a_row = a + i * k;
    for (int64_t j = 0; j < n; ++j) {
      const float* b_row = b + j * k;
      double sum = 0.0;
      for (int64_t kk = 0; kk < k; ++kk)
        sum += static_cast<double>(a_row[kk]) * static_cast<double>(b_row[kk]);
      c[static_cast<size_t>(i * n + j)] = static_cast<float>(sum);
    }
  }
  return c;
}

template <class Acc>
std::vector<float> dequant_impl(std::span<const Acc> acc, int64_t m, int64_t n,
                                std::span<const float> scale_per_token,
                                std::span<const float> scale_per_channel,
                                std::span<const float> bias) {
  detail::require_matrix("dequant_ref", "accumulator", acc.size(), m, n);
  detail::require_vector("dequant_ref", "scale_per_token", scale_per_token.size(), m, true);
  detail::require_vector("dequant_ref", "scale_per_channel", scale_per_channel.size(), n, true);
  detail::require_vector("dequant_ref", "bias", bias.size(), n, true);
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const size_t idx = static_cast<size_t>(i * n + j);
      // The order the GPU epilogue reproduces: (acc * s_x[m]) * s_w[n] + b[n], each op rounded.
      float v = static_cast<float>(acc[idx]);
      if (!scale_per_token.empty()) v = v * scale_per_token[static_cast<size_t>(i)];
      if (!scale_per_channel.empty()) v = v * scale_per_channel[static_cast<size_t>(j)];
      if (!bias.empty()) v = v + bias[static_cast<size_t>(j)];
      y[idx] = v;
    }
  }
  return y;
}

// dequant_impl plus the residual, added last (as the GPU: __fadd_rn(residual, v)), before rounding.
template <class Acc>
std::vector<float> dequant_residual_unrounded_impl(std::span<const Acc> acc, int64_t m, int64_t n,
                                                   std::span<const float> scale_per_token,
                                                   std::span<const float> scale_per_channel,
                                                   std::span<const float> bias,
                                                   std::span<const bf16_t> residual) {
  detail::require_matrix("dequant_residual_ref", "residual", residual.size(), m, n);
  std::vector<float> y = dequant_impl(acc, m, n, scale_per_token, scale_per_channel, bias);
  for (size_t i = 0; i < y.size(); ++i) y[i] = to_float(residual[i]) + y[i];
  return y;
}

template <class Acc>
std::vector<bf16_t> dequant_residual_impl(std::span<const Acc> acc, int64_t m, int64_t n,
                                          std::span<const float> scale_per_token,
                                          std::span<const float> scale_per_channel,
                                          std::span<const float> bias,
                                          std::span<const bf16_t> residual) {
  const std::vector<float> y = dequant_residual_unrounded_impl(acc, m, n, scale_per_token,
                                                               scale_per_channel, bias, residual);
  std::vector<bf16_t> out(y.size());
  for (size_t i = 0; i < y.size(); ++i) out[i] = bf16_from_float(y[i]);
  return out;
}

}  // namespace

std::vector<int32_t> gemm_int8_ref(std::span<const int8_t> a, std::span<const int8_t> b, int64_t m,
                                   int64_t n, int64_t k) {
  require_gemm_operands("gemm_int8_ref", a.size(), b.size(), m, n, k);
  constexpr int64_t kMaxProduct = 128 * 128;
  SS_REQUIRE(k <= std::numeric_limits<int32_t>::max() / kMaxProduct,
             "gemm_int8_ref: K = " << k << " could overflow the int32 accumulator (|sum| up to "
                                   << kMaxProduct << " * K); at most "
                                   << std::numeric_limits<int32_t>::max() / kMaxProduct);
  std::vector<int32_t> c(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    const int8_t* a_row = a.data() + i * k;
    for (int64_t j = 0; j < n; ++j) {
      const int8_t* b_row = b.data() + j * k;
      int32_t sum = 0;
      for (int64_t kk = 0; kk < k; ++kk)
        sum += static_cast<int32_t>(a_row[kk]) * static_cast<int32_t>(b_row[kk]);
      c[static_cast<size_t>(i * n + j)] = sum;
    }
  }
  return c;
}

std::vector<float> gemm_float_ref(std::span<const float> a, std::span<const float> b, int64_t m,
                                  int64_t n, int64_t k) {
  require_gemm_operands("gemm_float_ref", a.size(), b.size(), m, n, k);
  return gemm_double_acc(a.data(), b.data(), m, n, k);
}

std::vector<float> gemm_e4m3_ref(std::span<const fp8_e4m3_t> a, std::span<const fp8_e4m3_t> b,
                                 int64_t m, int64_t n, int64_t k) {
  require_gemm_operands("gemm_e4m3_ref", a.size(), b.size(), m, n, k);
  const std::vector<float> a_f = to_float_vector(a);
  const std::vector<float> b_f = to_float_vector(b);
  return gemm_double_acc(a_f.data(), b_f.data(), m, n, k);
}

std::vector<float> gemm_bf16_ref(std::span<const bf16_t> a, std::span<const bf16_t> b, int64_t m,
                                 int64_t n, int64_t k) {
  require_gemm_operands("gemm_bf16_ref", a.size(), b.size(), m, n, k);
  const std::vector<float> a_f = to_float_vector(a);
  const std::vector<float> b_f = to_float_vector(b);
  return gemm_double_acc(a_f.data(), b_f.data(), m, n, k);
}

std::vector<float> dequant_ref(std::span<const float> acc, int64_t m, int64_t n,
                               std::span<const float> scale_per_token,
                               std::span<const float> scale_per_channel,
                               std::span<const float> bias) {
  return dequant_impl(acc, m, n, scale_per_token, scale_per_channel, bias);
}

std::vector<float> dequant_ref(std::span<const int32_t> acc, int64_t m, int64_t n,
                               std::span<const float> scale_per_token,
                               std::span<const float> scale_per_channel,
                               std::span<const float> bias) {
  return dequant_impl(acc, m, n, scale_per_token, scale_per_channel, bias);
}

std::vector<bf16_t> dequant_residual_ref(std::span<const float> acc, int64_t m, int64_t n,
                                         std::span<const float> scale_per_token,
                                         std::span<const float> scale_per_channel,
                                         std::span<const float> bias,
                                         std::span<const bf16_t> residual) {
  return dequant_residual_impl(acc, m, n, scale_per_token, scale_per_channel, bias, residual);
}

std::vector<bf16_t> dequant_residual_ref(std::span<const int32_t> acc, int64_t m, int64_t n,
                                         std::span<const float> scale_per_token,
                                         std::span<const float> scale_per_channel,
                                         std::span<const float> bias,
                                         std::span<const bf16_t> residual) {
  return dequant_residual_impl(acc, m, n, scale_per_token, scale_per_channel, bias, residual);
}

std::vector<float> dequant_residual_unrounded_ref(std::span<const float> acc, int64_t m, int64_t n,
                                                  std::span<const float> scale_per_token,
                                                  std::span<const float> scale_per_channel,
                                                  std::span<const float> bias,
                                                  std::span<const bf16_t> residual) {
  return dequant_residual_unrounded_impl(acc, m, n, scale_per_token, scale_per_channel, bias,
                                         residual);
}

std::vector<float> dequant_residual_unrounded_ref(std::span<const int32_t> acc, int64_t m,
                                                  int64_t n, std::span<const float> scale_per_token,
                                                  std::span<const float> scale_per_channel,
                                                  std::span<const float> bias,
                                                  std::span<const bf16_t> residual) {
  return dequant_residual_unrounded_impl(acc, m, n, scale_per_token, scale_per_channel, bias,
                                         residual);
}

}  // namespace slidesparse
