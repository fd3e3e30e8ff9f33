// RoPE reference: inverse frequencies (plain and Llama 3 scaling) against the formulas evaluated
// independently here, the cos/sin table layout, identity at position 0, known rotations, strides.
#include "slidesparse/core/rope_ref.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/random_data.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

constexpr long double kPi = 3.141592653589793238462643383279502884L;

// 1 / theta^(2i/D) through exp/log in long double (a different evaluation than the reference's).
long double plain_inv_freq(long double theta, int64_t i, int64_t d) {
  return std::exp(-std::log(theta) * (2.0L * i) / d);
}

void expect_float_close(float got, long double want, const std::string& what) {
  EXPECT_NEAR(double(got), double(want), std::fabs(double(want)) * 2.5e-7) << what;
}

TEST(RopeInvFreq, PlainThetaMatchesTheFormula) {
  for (double theta : {10000.0, 1000000.0}) {
    for (int64_t d : {2, 64, 128}) {
      const auto inv = rope_inv_freq(RopeParams{theta, d, std::nullopt, ""});
      ASSERT_EQ(int64_t(inv.size()), d / 2);
      EXPECT_EQ(inv[0], 1.0f);
      for (int64_t i = 0; i < d / 2; ++i)
        expect_float_close(inv[i], plain_inv_freq(theta, i, d), "i " + std::to_string(i));
    }
  }
}

TEST(RopeInvFreq, Llama3ScalingMatchesTheFormula) {
  // Llama 3.1 8B: theta 500000, D 128, factor 8, low 1, high 4, original 8192.
  const Llama3RopeScaling sc{8.0, 1.0, 4.0, 8192};
  const RopeParams p{500000.0, 128, sc, "llama3"};
  const auto inv = rope_inv_freq(p);
  ASSERT_EQ(inv.size(), 64u);
  int high = 0, low = 0, medium = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const long double f = plain_inv_freq(500000.0L, i, 128);
    const long double wavelen = 2 * kPi / f;
    long double want;
    if (wavelen < 8192.0L / 4) {
      want = f;
      ++high;
    } else if (wavelen > 8192.0L / 1) {
      want = f / 8;
      ++low;
    } else {
      const long double s = (8192.0L / wavelen - 1) / (4 - 1);
      want = (1 - s) * f / 8 + s * f;
      ++medium;
      EXPECT_GT(want, f / 8);
      EXPECT_LT(want, f);
    }
    expect_float_close(inv[i], want, "i " + std::to_string(i));
  }
  // All three regimes occur for these parameters.
  EXPECT_GT(high, 0);
  EXPECT_GT(low, 0);
  EXPECT_GT(medium, 0);
  // rope_type may be left empty when scaling is given.
  EXPECT_EQ(rope_inv_freq(RopeParams{500000.0, 128, sc, ""}), inv);
}

TEST(RopeInvFreq, OtherTypesAreNotSupported) {
  try {
    rope_inv_freq(RopeParams{10000.0, 64, std::nullopt, "yarn"});
    FAIL() << "no throw";
  } catch (const NotSupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("yarn"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rope_inv_freq(RopeParams{10000.0, 64, std::nullopt, "llama3"}), Error);
  EXPECT_THROW(rope_inv_freq(RopeParams{10000.0, 63, std::nullopt, ""}), Error);
  EXPECT_THROW(rope_inv_freq(RopeParams{10000.0, 64, Llama3RopeScaling{8, 4, 4, 8192}, ""}), Error);
}

TEST(RopeCosSinTable, LayoutIsCosThenSinOfFloatAngles) {
  const RopeParams p{10000.0, 8, std::nullopt, ""};
  const auto inv = rope_inv_freq(p);
  const auto table = rope_cos_sin_table(p, 50);
  ASSERT_EQ(table.size(), 50u * 8);
  for (int pos : {0, 1, 7, 49}) {
    for (int i = 0; i < 4; ++i) {
      const float angle = float(pos) * inv[i];
      EXPECT_EQ(table[pos * 8 + i], float(std::cos(double(angle))));
      EXPECT_EQ(table[pos * 8 + 4 + i], float(std::sin(double(angle))));
    }
  }
  EXPECT_EQ(table[0], 1.0f);
  EXPECT_EQ(table[4], 0.0f);
}

TEST(RopeApply, PositionZeroIsIdentity) {
  const int64_t tokens = 3, heads = 5, d = 64;
  const RopeParams p{10000.0, d, std::nullopt, ""};
  const auto table = rope_cos_sin_table(p, 4);
  auto x = test::random_bf16(tokens * heads * d, 1);
  const auto before = x;
  rope_apply_ref(x, tokens, heads, d, heads * d, std::vector<int32_t>{0, 0, 0}, table);
  EXPECT_EQ(x, before);
}

TEST(RopeApply, RotatesPairsByTheAngle) {
  // D = 4, theta 10000: inv = [1, 0.01]; position 1 rotates pair (x0, x2) by 1 rad and (x1, x3)
  // by 0.01 rad.
  const RopeParams p{10000.0, 4, std::nullopt, ""};
  const auto table = rope_cos_sin_table(p, 2);
  std::vector<bf16_t> x = {bf16_from_float(1), bf16_from_float(2), bf16_from_float(0),
                           bf16_from_float(-1)};
  rope_apply_ref(x, 1, 1, 4, 4, std::vector<int32_t>{1}, table);
  const float c0 = table[4], c1 = table[5], s0 = table[6], s1 = table[7];
  EXPECT_EQ(x[0], bf16_from_float(1.0f * c0 - 0.0f * s0));
  EXPECT_EQ(x[1], bf16_from_float(2.0f * c1 - (-1.0f) * s1));
  EXPECT_EQ(x[2], bf16_from_float(0.0f * c0 + 1.0f * s0));
  EXPECT_EQ(x[3], bf16_from_float(-1.0f * c1 + 2.0f * s1));
  EXPECT_NEAR(to_float(x[0]), std::cos(1.0), 4e-3);
  EXPECT_NEAR(to_float(x[2]), std::sin(1.0), 4e-3);
}

TEST(RopeApply, StrideLeavesOtherColumnsAloneAndMatchesPerHead) {
  // Rows of a qkv buffer: 2 q heads, 1 k head, 1 v head of D 8; rotate only the k head.
  const int64_t d = 8, ld = 4 * d, tokens = 3;
  const RopeParams p{500000.0, d, Llama3RopeScaling{8.0, 1.0, 4.0, 16}, ""};
  const auto table = rope_cos_sin_table(p, 40);
  const std::vector<int32_t> pos = {5, 39, 17};
  auto qkv = test::random_bf16(tokens * ld, 9);
  const auto before = qkv;
  rope_apply_ref(std::span(qkv).subspan(2 * d), tokens, 1, d, ld, pos, table);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<bf16_t> head(before.begin() + t * ld + 2 * d, before.begin() + t * ld + 3 * d);
    rope_apply_ref(head, 1, 1, d, d, std::vector<int32_t>{pos[t]}, table);
    for (int64_t c = 0; c < ld; ++c) {
      if (c >= 2 * d && c < 3 * d)
        EXPECT_EQ(qkv[t * ld + c], head[c - 2 * d]);
      else
        EXPECT_EQ(qkv[t * ld + c], before[t * ld + c]);
    }
  }
  EXPECT_THROW(rope_apply_ref(qkv, tokens, 1, d, ld, std::vector<int32_t>{5, 40, 1}, table), Error);
  EXPECT_THROW(rope_apply_ref(qkv, tokens, 5, d, ld, pos, table), Error);
}

}  // namespace
}  // namespace slidesparse
