// Op references of the model: RMSNorm (HF's rounding order), SiLU*mul, embedding, argmax and the
// residual epilogue, on hand-checked rows and against direct float/double evaluation.
#include "slidesparse/core/ops_ref.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/random_data.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

std::vector<bf16_t> bf16s(std::initializer_list<float> values) {
  std::vector<bf16_t> out;
  for (float v : values) out.push_back(bf16_from_float(v));
  return out;
}

std::vector<float> floats(const std::vector<bf16_t>& v) {
  std::vector<float> out;
  for (bf16_t b : v) out.push_back(to_float(b));
  return out;
}

TEST(RmsNormRef, KnownRowIsExact) {
  // mean(x^2) = 4, r = 1/2, n = 1: y is the weight itself.
  const auto x = bf16s({2, -2, 2, -2});
  const auto w = bf16s({1.5f, -2.0f, 0.25f, 3.0f});
  EXPECT_EQ(floats(rms_norm_ref(x, 1, 4, w, 0.0f)), (std::vector<float>{1.5f, 2.0f, 0.25f, -3.0f}));
}

TEST(RmsNormRef, RoundsAfterNormalisingThenAfterTheWeight) {
  // x = [1, 2, 3, 4]: mean 7.5, r = 1/sqrt(7.5 + eps); n = bf16(x r), y = bf16(n w).
  const auto x = bf16s({1, 2, 3, 4});
  const auto w = bf16s({1.1f, 0.9f, -1.3f, 2.7f});
  const float eps = 1e-6f;
  const float r = 1.0f / std::sqrt(7.5f + eps);
  const auto y = rms_norm_ref(x, 1, 4, w, eps);
  for (int c = 0; c < 4; ++c) {
    const float n = to_float(bf16_from_float(to_float(x[c]) * r));
    EXPECT_EQ(y[c], bf16_from_float(n * to_float(w[c]))) << "column " << c;
  }
  // The two roundings differ from one rounding of x r w somewhere on a random row.
  const int64_t k = 1000;
  const auto xr = test::random_bf16(k, 5);
  const auto wr = test::random_bf16(k, 6);
  const auto yr = rms_norm_ref(xr, 1, k, wr, eps);
  double sum = 0;
  for (bf16_t v : xr) sum += double(to_float(v)) * to_float(v);
  const float rr = 1.0f / std::sqrt(float(sum / k) + eps);
  int single_rounding_differs = 0;
  for (int64_t c = 0; c < k; ++c) {
    const float n = to_float(bf16_from_float(to_float(xr[c]) * rr));
    EXPECT_EQ(yr[c], bf16_from_float(n * to_float(wr[c])));
    single_rounding_differs += yr[c] != bf16_from_float(to_float(xr[c]) * rr * to_float(wr[c]));
  }
  EXPECT_GT(single_rounding_differs, 0);
}

TEST(RmsNormRef, RowsAreIndependentAndCloseToDouble) {
  const int64_t m = 17, k = 333;
  const auto x = test::random_bf16(m * k, 11);
  const auto w = test::random_bf16(k, 12);
  const auto y = rms_norm_ref(x, m, k, w, 1e-5f);
  for (int64_t i = 0; i < m; ++i) {
    const auto row = rms_norm_ref(std::span(x).subspan(i * k, k), 1, k, w, 1e-5f);
    double ss = 0;
    for (int64_t c = 0; c < k; ++c) ss += std::pow(double(to_float(x[i * k + c])), 2);
    const double r = 1.0 / std::sqrt(ss / k + 1e-5);
    for (int64_t c = 0; c < k; ++c) {
      EXPECT_EQ(row[c], y[i * k + c]);
      const double exact = to_float(x[i * k + c]) * r * to_float(w[c]);
      EXPECT_NEAR(to_float(y[i * k + c]), exact, std::fabs(exact) * 1.6e-2 + 1e-30);
    }
  }
}

TEST(RmsNormRef, BadShapesThrow) {
  const auto x = bf16s({1, 2, 3, 4});
  EXPECT_THROW(rms_norm_ref(x, 1, 4, bf16s({1, 1, 1}), 1e-6f), Error);
  EXPECT_THROW(rms_norm_ref(x, 2, 4, bf16s({1, 1, 1, 1}), 1e-6f), Error);
}

TEST(SiluMulRef, GateColumnsFirstOneRounding) {
  // Two rows of inter 3: [g0 g1 g2 | u0 u1 u2].
  const auto gu = bf16s({0, 1, -2, 5, 2, 3, 10, -0.5f, 0.75f, 1, 1, 1});
  const auto y = silu_mul_ref(gu, 2, 3);
  ASSERT_EQ(y.size(), 6u);
  EXPECT_EQ(to_float(y[0]), 0.0f);  // silu(0) = 0
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < 3; ++c) {
      const float g = to_float(gu[i * 6 + c]);
      const float u = to_float(gu[i * 6 + 3 + c]);
      EXPECT_EQ(y[i * 3 + c], bf16_from_float(g / (1.0f + std::exp(-g)) * u)) << i << "," << c;
    }
  // silu(1) * 2 = 1.46211716...
  EXPECT_NEAR(to_float(y[1]), 1.4621172f, 0.004f);
  // silu(10) ~ 9.99955
  EXPECT_NEAR(to_float(y[3]), 9.99955f, 0.04f);
}

TEST(SiluMulRef, BadShapesThrow) {
  EXPECT_THROW(silu_mul_ref(bf16s({1, 2, 3}), 1, 2), Error);
  EXPECT_THROW(silu_mul_ref(bf16s({1, 2}), 1, 0), Error);
}

TEST(EmbeddingRef, CopiesRowsAndMarksBadIdsWithNaN) {
  const auto table = test::random_bf16(5 * 3, 3);
  const std::vector<int32_t> tokens = {4, 0, 4, 5, -1, 2};
  const auto out = embedding_ref(table, 5, 3, tokens);
  ASSERT_EQ(out.size(), 18u);
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) {
      const int t = tokens[i];
      if (t >= 0 && t < 5)
        EXPECT_EQ(out[i * 3 + c], table[t * 3 + c]);
      else
        EXPECT_EQ(out[i * 3 + c].bits, 0x7FFF);
    }
  EXPECT_TRUE(embedding_ref(table, 5, 3, {}).empty());
  EXPECT_THROW(embedding_ref(table, 4, 3, tokens), Error);
}

TEST(ArgmaxRef, LowestIndexOnTiesAndNaNNeverWins) {
  const float nan = std::nanf("");
  const float inf = INFINITY;
  const auto logits = bf16s({
      1,     3,    3,    2,     // tie -> 1
      nan,   -5,   nan,  -6,    // NaN skipped -> 1
      nan,   nan,  nan,  nan,   // all NaN -> 0
      -inf,  -inf, -inf, -inf,  // all -inf -> 0
      -0.0f, 0.0f, -1,   -2,    // +0 and -0 tie -> 0
      0,     0,    inf,  nan,   // inf wins
  });
  EXPECT_EQ(argmax_ref(logits, 6, 4), (std::vector<int32_t>{1, 1, 0, 0, 0, 2}));
  EXPECT_THROW(argmax_ref(logits, 5, 4), Error);
}

TEST(ResidualEpilogue, OneRoundingAfterTheAdd) {
  // y = 2^-8 + 2^-20: bf16(y) = 2^-8 and 1 + 2^-8 ties to 1.0; one rounding gives 1 + 2^-7.
  const float y = std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20);
  const auto res = bf16s({1.0f});
  EXPECT_EQ(to_float(add_residual_ref(std::vector<float>{y}, res)[0]), 1.0f + 0.0078125f);
  EXPECT_EQ(to_float(bf16_from_float(1.0f + to_float(bf16_from_float(y)))), 1.0f);
  // dequant_residual_ref = bf16(res + ((acc * s_x) * s_w + b)) for both accumulator types.
  const int64_t m = 3, n = 5;
  const auto acc_f = test::random_floats(m * n, 21, 30.0f);
  std::vector<int32_t> acc_i(acc_f.size());
  for (size_t i = 0; i < acc_f.size(); ++i) acc_i[i] = int32_t(acc_f[i] * 100);
  const auto sx = test::random_floats(m, 22, 0.01f);
  const auto sw = test::random_floats(n, 23, 0.01f);
  const auto b = test::random_floats(n, 24, 0.5f);
  const auto r = test::random_bf16(m * n, 25);
  const auto y_f = dequant_ref(std::span<const float>(acc_f), m, n, sx, sw, b);
  const auto y_i = dequant_ref(std::span<const int32_t>(acc_i), m, n, sx, sw, b);
  EXPECT_EQ(dequant_residual_ref(std::span<const float>(acc_f), m, n, sx, sw, b, r),
            add_residual_ref(y_f, r));
  EXPECT_EQ(dequant_residual_ref(std::span<const int32_t>(acc_i), m, n, sx, sw, b, r),
            add_residual_ref(y_i, r));
  for (int64_t i = 0; i < m * n; ++i) {
    const int64_t row = i / n, col = i % n;
    const float expect = to_float(r[i]) + ((float(acc_i[i]) * sx[row]) * sw[col] + b[col]);
    EXPECT_EQ(add_residual_ref(y_i, r)[i], bf16_from_float(expect));
  }
  EXPECT_THROW(
      dequant_residual_ref(std::span<const float>(acc_f), m, n, sx, sw, b, std::span(r).first(4)),
      Error);
}

}  // namespace
}  // namespace slidesparse
