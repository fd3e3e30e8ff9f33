// Reference GEMMs and the dequant epilogue: hand values, int32 range guard, and the exact float
// operation order the GPU epilogue reproduces (no fused multiply-add).
#include "slidesparse/core/gemm_ref.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "core/random_data.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(GemmRef, HandValues) {
  const std::vector<float> a = {1, 2, 3, -1, 0, 2};  // [2, 3]
  const std::vector<float> b = {4, 5, 6, -1, 0, 1};  // [2, 3]
  EXPECT_EQ(gemm_float_ref(a, b, 2, 2, 3), (std::vector<float>{32, 2, 8, 3}));
  const std::vector<int8_t> ai = {1, 2, 3, -1, 0, 2};
  const std::vector<int8_t> bi = {4, 5, 6, -1, 0, 1};
  EXPECT_EQ(gemm_int8_ref(ai, bi, 2, 2, 3), (std::vector<int32_t>{32, 2, 8, 3}));
}

TEST(GemmRef, Int8ExtremesAndRangeGuard) {
  const std::vector<int8_t> a(1000, -128), b(1000, -128);
  EXPECT_EQ(gemm_int8_ref(a, b, 1, 1, 1000)[0], 16384 * 1000);
  const int64_t too_long = 131072;  // 16384 * K > INT32_MAX
  const std::vector<int8_t> big(too_long, 1);
  EXPECT_THROW(gemm_int8_ref(big, big, 1, 1, too_long), Error);
  EXPECT_NO_THROW(
      gemm_int8_ref(std::span(big).first(131071), std::span(big).first(131071), 1, 1, 131071));
}

TEST(GemmRef, NarrowTypesMatchFloatOfTheirValues) {
  const int64_t m = 3, n = 5, k = 41;
  const auto af = test::random_floats(m * k, 1), bf = test::random_floats(n * k, 2);
  std::vector<fp8_e4m3_t> a8, b8;
  for (float f : af) a8.push_back(e4m3_from_float(f * 10));
  for (float f : bf) b8.push_back(e4m3_from_float(f * 10));
  EXPECT_EQ(gemm_e4m3_ref(a8, b8, m, n, k),
            gemm_float_ref(to_float_vector(a8), to_float_vector(b8), m, n, k));
  const auto a16 = to_bf16_vector(af), b16 = to_bf16_vector(bf);
  EXPECT_EQ(gemm_bf16_ref(a16, b16, m, n, k),
            gemm_float_ref(to_float_vector(a16), to_float_vector(b16), m, n, k));
}

TEST(GemmRef, BadShapesThrow) {
  const std::vector<float> a(6, 1.0f);
  EXPECT_THROW(gemm_float_ref(a, a, 2, 2, 4), Error);
  EXPECT_THROW(gemm_float_ref(a, a, 0, 0, 6), Error);
  EXPECT_THROW(gemm_float_ref({}, {}, 1, 1, 1), Error);
  const std::vector<int8_t> ai(6, 1);
  EXPECT_THROW(gemm_int8_ref(ai, ai, 1, 2, 6), Error);
  try {
    gemm_float_ref(a, a, 2, 1, 4);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemm_float_ref"), std::string::npos) << e.what();
  }
}

// The expected value, one rounded float operation per step (volatile keeps the compiler honest).
float dequant_by_hand(float acc, float s_x, float s_w, float bias) {
  volatile float v = acc * s_x;
  v = v * s_w;
  v = v + bias;
  return v;
}

TEST(GemmRef, DequantOrderIsThreeSeparatelyRoundedOps) {
  const int64_t m = 17, n = 33;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> acc_dist(-2000000, 2000000);
  std::uniform_real_distribution<float> scale_dist(1e-4f, 1e-2f), bias_dist(-1.0f, 1.0f);
  std::vector<int32_t> acc(m * n);
  for (auto& a : acc) a = acc_dist(rng);
  std::vector<float> s_x(m), s_w(n), bias(n);
  for (auto& s : s_x) s = scale_dist(rng);
  for (auto& s : s_w) s = scale_dist(rng);
  for (auto& b : bias) b = bias_dist(rng);
  const auto y = dequant_ref(acc, m, n, s_x, s_w, bias);
  int fused_differs = 0, reassociated_differs = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const float a = static_cast<float>(acc[i * n + j]);
      const float expected = dequant_by_hand(a, s_x[i], s_w[j], bias[j]);
      EXPECT_EQ(std::bit_cast<uint32_t>(y[i * n + j]), std::bit_cast<uint32_t>(expected));
      volatile float as_x = a * s_x[i];
      fused_differs += std::fma(static_cast<float>(as_x), s_w[j], bias[j]) != expected;
      volatile float sxw = s_x[i] * s_w[j];
      reassociated_differs += (a * static_cast<float>(sxw)) + bias[j] != expected;
    }
  }
  // The data must be able to tell the orders apart, or the test above would prove nothing.
  EXPECT_GT(fused_differs, 0);
  EXPECT_GT(reassociated_differs, 0);
}

TEST(GemmRef, DequantOptionalOperands) {
  const std::vector<float> acc = {1.5f, -2.0f, 3.0f, 4.0f};
  EXPECT_EQ(dequant_ref(acc, 2, 2, {}, {}, {}), acc);
  const std::vector<float> bias = {1.0f, -1.0f};
  EXPECT_EQ(dequant_ref(acc, 2, 2, {}, {}, bias), (std::vector<float>{2.5f, -3.0f, 4.0f, 3.0f}));
  const std::vector<float> s_x = {2.0f, 0.5f};
  EXPECT_EQ(dequant_ref(acc, 2, 2, s_x, {}, {}), (std::vector<float>{3.0f, -4.0f, 1.5f, 2.0f}));
  EXPECT_THROW(dequant_ref(acc, 2, 2, std::vector<float>(3, 1.0f), {}, {}), Error);
  EXPECT_THROW(dequant_ref(acc, 2, 2, {}, std::vector<float>(1, 1.0f), {}), Error);
  EXPECT_THROW(dequant_ref(acc, 2, 2, {}, {}, std::vector<float>(4, 1.0f)), Error);
  EXPECT_THROW(dequant_ref(acc, 3, 2, {}, {}, {}), Error);
}

}  // namespace
}  // namespace slidesparse
