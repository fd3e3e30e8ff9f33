// bf16 and FP8 E4M3 conversions against hand-checked values and exhaustive round trips.
#include "slidesparse/core/float_formats.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

namespace slidesparse {
namespace {

uint8_t e4m3_bits(float v) { return e4m3_from_float(v).bits; }

TEST(Bf16, ExactValuesRoundTrip) {
  for (float v : {0.0f, 1.0f, -2.5f, 0.15625f, 65280.0f, -3.0e38f}) {
    bf16_t b = bf16_from_float(v);
    EXPECT_EQ(to_float(bf16_from_float(to_float(b))), to_float(b));
  }
  EXPECT_EQ(bf16_from_float(1.0f).bits, 0x3F80);
  EXPECT_EQ(bf16_from_float(-2.0f).bits, 0xC000);
  EXPECT_EQ(to_float(bf16_t{0x3FC0}), 1.5f);
}

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0).
  EXPECT_EQ(bf16_from_float(1.0f + 0x1p-8f).bits, 0x3F80);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  EXPECT_EQ(bf16_from_float(1.0f + 3 * 0x1p-8f).bits, 0x3F82);
  // Just above the halfway point rounds up.
  EXPECT_EQ(bf16_from_float(1.0f + 0x1p-8f + 0x1p-20f).bits, 0x3F81);
  // The largest finite floats round to infinity, as on the GPU.
  EXPECT_EQ(bf16_from_float(std::numeric_limits<float>::max()).bits, 0x7F80);
}

TEST(Bf16, SpecialValues) {
  EXPECT_EQ(bf16_from_float(-0.0f).bits, 0x8000);
  EXPECT_EQ(bf16_from_float(std::numeric_limits<float>::infinity()).bits, 0x7F80);
  EXPECT_TRUE(std::isnan(to_float(bf16_from_float(std::numeric_limits<float>::quiet_NaN()))));
  // CUDA's __float2bfloat16_rn returns the canonical NaN 0x7FFF whatever the sign and payload.
  EXPECT_EQ(bf16_from_float(std::numeric_limits<float>::quiet_NaN()).bits, 0x7FFF);
  EXPECT_EQ(bf16_from_float(-std::numeric_limits<float>::quiet_NaN()).bits, 0x7FFF);
  // A NaN whose payload lives only in the low 16 bits must not become infinity.
  const float low_payload_nan = std::bit_cast<float>(0x7F800001u);
  EXPECT_TRUE(std::isnan(to_float(bf16_from_float(low_payload_nan))));
  EXPECT_TRUE(std::isnan(to_float(bf16_from_float(-low_payload_nan))));
  EXPECT_TRUE(is_zero(bf16_from_float(-0.0f)));
}

TEST(Bf16, EveryBf16ValueRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const bf16_t b{static_cast<uint16_t>(bits)};
    const float f = to_float(b);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(to_float(bf16_from_float(f))));
    } else {
      EXPECT_EQ(bf16_from_float(f).bits, bits);
    }
  }
}

TEST(E4M3, HandCheckedValues) {
  EXPECT_EQ(e4m3_bits(1.0f), 0x38);
  EXPECT_EQ(e4m3_bits(-1.0f), 0xB8);
  EXPECT_EQ(e4m3_bits(448.0f), 0x7E);
  EXPECT_EQ(to_float(fp8_e4m3_t{0x7E}), 448.0f);
  EXPECT_EQ(e4m3_bits(240.0f), 0x77);
  EXPECT_EQ(to_float(fp8_e4m3_t{0x08}), 0x1p-6f);  // smallest normal
}

TEST(E4M3, SaturatesFiniteAndInfinityAt448) {
  EXPECT_EQ(e4m3_bits(464.0f), 0x7E);  // halfway to the (absent) 480: SATFINITE gives 448
  EXPECT_EQ(e4m3_bits(500.0f), 0x7E);
  EXPECT_EQ(e4m3_bits(1.0e30f), 0x7E);
  EXPECT_EQ(e4m3_bits(-464.0f), 0xFE);
  EXPECT_EQ(e4m3_bits(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(e4m3_bits(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(e4m3_bits(std::numeric_limits<float>::max()), 0x7E);
}

TEST(E4M3, Subnormals) {
  EXPECT_EQ(e4m3_bits(0.001953125f), 0x01);  // 2^-9, the smallest subnormal
  EXPECT_EQ(to_float(fp8_e4m3_t{0x01}), 0.001953125f);
  EXPECT_EQ(to_float(fp8_e4m3_t{0x07}), 7 * 0x1p-9f);
  // Halfway between subnormals: ties to even.
  EXPECT_EQ(e4m3_bits(0.5f * 0x1p-9f), 0x00);  // 0.5 steps -> 0
  EXPECT_EQ(e4m3_bits(1.5f * 0x1p-9f), 0x02);  // 1.5 steps -> 2
  EXPECT_EQ(e4m3_bits(2.5f * 0x1p-9f), 0x02);  // 2.5 steps -> 2
  EXPECT_EQ(e4m3_bits(3.5f * 0x1p-9f), 0x04);  // 3.5 steps -> 4
  EXPECT_EQ(e4m3_bits(-2.5f * 0x1p-9f), 0x82);
  EXPECT_EQ(e4m3_bits(0.51f * 0x1p-9f), 0x01);  // just above half rounds up
  EXPECT_EQ(e4m3_bits(1e-30f), 0x00);
  // 7.5 steps ties to 8 steps = the smallest normal 2^-6.
  EXPECT_EQ(e4m3_bits(7.5f * 0x1p-9f), 0x08);
}

TEST(E4M3, NormalRangeTiesToEven) {
  // Between 1 (m=0) and 1.125 (m=1): 1.0625 ties to 1.0; 1.1875 ties to 1.25 (m=2).
  EXPECT_EQ(e4m3_bits(1.0625f), 0x38);
  EXPECT_EQ(e4m3_bits(1.1875f), 0x3A);
  // Mantissa carry into the exponent: 1.9375 ties to 2.0.
  EXPECT_EQ(e4m3_bits(1.9375f), 0x40);
}

TEST(E4M3, ZerosAndNaN) {
  EXPECT_EQ(e4m3_bits(0.0f), 0x00);
  EXPECT_EQ(e4m3_bits(-0.0f), 0x80);
  EXPECT_TRUE(std::signbit(to_float(fp8_e4m3_t{0x80})));
  EXPECT_TRUE(is_zero(fp8_e4m3_t{0x80}));
  EXPECT_EQ(e4m3_bits(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  // Like CUDA's conversion, a negative NaN also becomes 0x7F (the sign is dropped).
  EXPECT_EQ(e4m3_bits(-std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_TRUE(std::isnan(to_float(fp8_e4m3_t{0x7F})));
  EXPECT_TRUE(std::isnan(to_float(fp8_e4m3_t{0xFF})));
  EXPECT_FALSE(is_zero(fp8_e4m3_t{0x7F}));
}

TEST(E4M3, EveryCodeRoundTripsAndIsMonotonic) {
  float previous = -1.0f;
  for (int bits = 0; bits < 0x7F; ++bits) {  // all non-negative finite codes, ascending
    const float f = to_float(fp8_e4m3_t{static_cast<uint8_t>(bits)});
    EXPECT_GT(f, previous) << "code " << bits;
    previous = f;
    EXPECT_EQ(e4m3_bits(f), bits);
    EXPECT_EQ(e4m3_bits(-f), bits | 0x80);
    // The midpoint to the next code rounds to the even one of the two.
    if (bits + 1 < 0x7F) {
      const float next = to_float(fp8_e4m3_t{static_cast<uint8_t>(bits + 1)});
      const uint8_t even = (bits % 2 == 0) ? bits : bits + 1;
      EXPECT_EQ(e4m3_bits(0.5f * (f + next)), even) << "midpoint after code " << bits;
    }
  }
}

}  // namespace
}  // namespace slidesparse
