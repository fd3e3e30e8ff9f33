// Row-wise symmetric quantisation: hand-checked INT8 / E4M3 codes, scales, zero rows, bad shapes.
#include "slidesparse/core/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/random_data.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(Quant, Int8RoundsHalfToEven) {
  EXPECT_EQ(quantize_int8(2.5f, 1.0f), 2);
  EXPECT_EQ(quantize_int8(-2.5f, 1.0f), -2);
  EXPECT_EQ(quantize_int8(3.5f, 1.0f), 4);
  EXPECT_EQ(quantize_int8(-3.5f, 1.0f), -4);
  EXPECT_EQ(quantize_int8(0.5f, 1.0f), 0);
  EXPECT_EQ(quantize_int8(-0.5f, 1.0f), 0);
  EXPECT_EQ(quantize_int8(1.5f, 1.0f), 2);
  EXPECT_EQ(quantize_int8(2.4999998f, 1.0f), 2);
  EXPECT_EQ(quantize_int8(2.5000002f, 1.0f), 3);
  EXPECT_EQ(quantize_int8(5.0f, 2.0f), 2);  // 5 / 2 = 2.5 -> 2
}

TEST(Quant, Int8Clamps) {
  EXPECT_EQ(quantize_int8(127.5f, 1.0f), 127);
  EXPECT_EQ(quantize_int8(1000.0f, 1.0f), 127);
  EXPECT_EQ(quantize_int8(-128.0f, 1.0f), -128);
  EXPECT_EQ(quantize_int8(-1000.0f, 1.0f), -128);
  EXPECT_EQ(quantize_int8(std::numeric_limits<float>::infinity(), 1.0f), 127);
  EXPECT_EQ(quantize_int8(-std::numeric_limits<float>::infinity(), 1.0f), -128);
  EXPECT_EQ(quantize_int8(std::numeric_limits<float>::quiet_NaN(), 1.0f), 0);
}

TEST(Quant, ScaleIsAbsmaxOverQmax) {
  EXPECT_EQ(quant_max(DType::kI8), 127.0f);
  EXPECT_EQ(quant_max(DType::kFP8E4M3), 448.0f);
  EXPECT_THROW(quant_max(DType::kBF16), Error);
  EXPECT_EQ(quant_scale(254.0f, DType::kI8), 2.0f);
  EXPECT_EQ(quant_scale(0.0f, DType::kI8), kMinAbsMax / 127.0f);
  EXPECT_EQ(quant_scale(0.0f, DType::kFP8E4M3), kMinAbsMax / 448.0f);
}

TEST(Quant, RowsInt8HandChecked) {
  // Row 0: absmax 254 -> scale 2; row 1: all zeros -> kMinAbsMax scale, zero codes.
  const std::vector<float> v = {254.0f, -5.0f, 3.0f, -254.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const auto q = quantize_rows_int8(v, 2, 4);
  ASSERT_EQ(q.scales.size(), 2u);
  EXPECT_EQ(q.scales[0], 2.0f);
  EXPECT_EQ(q.scales[1], kMinAbsMax / 127.0f);
  const std::vector<int8_t> expected = {127, -2, 2, -127, 0, 0, 0, 0};
  EXPECT_EQ(q.codes, expected);
  EXPECT_EQ(q.rows, 2);
  EXPECT_EQ(q.cols, 4);
}

TEST(Quant, RowsE4M3HandChecked) {
  const std::vector<float> v = {448.0f, -1.0f, 0.0f, 2.0f};
  const auto q = quantize_rows_e4m3(v, 1, 4);
  EXPECT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(q.codes[0].bits, 0x7E);
  EXPECT_EQ(q.codes[1].bits, 0xB8);
  EXPECT_EQ(q.codes[2].bits, 0x00);
  EXPECT_EQ(q.codes[3].bits, 0x40);
}

TEST(Quant, RandomRowsMatchTheSpelledOutArithmetic) {
  const int64_t rows = 9, cols = 131;
  const auto v = test::random_floats(rows * cols, 11);
  const auto q8 = quantize_rows_int8(v, rows, cols);
  const auto qf8 = quantize_rows_e4m3(v, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    float absmax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) absmax = std::max(absmax, std::fabs(v[r * cols + c]));
    const float s8 = absmax / 127.0f;
    const float sf8 = absmax / 448.0f;
    EXPECT_EQ(q8.scales[r], s8);
    EXPECT_EQ(qf8.scales[r], sf8);
    bool saw_extreme = false;
    for (int64_t c = 0; c < cols; ++c) {
      const float x = v[r * cols + c];
      EXPECT_EQ(q8.codes[r * cols + c], static_cast<int8_t>(std::nearbyint(x / s8)));
      EXPECT_EQ(qf8.codes[r * cols + c], e4m3_from_float(x / sf8));
      saw_extreme |= std::abs(q8.codes[r * cols + c]) == 127;
    }
    EXPECT_TRUE(saw_extreme) << "the absmax element maps to +-127 in row " << r;
  }
}

TEST(Quant, BadShapesThrow) {
  const std::vector<float> v(6, 1.0f);
  EXPECT_THROW(quantize_rows_int8(v, 2, 4), Error);
  EXPECT_THROW(quantize_rows_int8(v, 0, 6), Error);
  EXPECT_THROW(quantize_rows_e4m3(v, 3, 0), Error);
  EXPECT_THROW(quantize_rows_e4m3({}, 1, 1), Error);
  try {
    quantize_rows_int8(v, 2, 4);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("quantize_rows_int8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("6"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 4]"), std::string::npos) << msg;
  }
}

TEST(Quant, VectorConversions) {
  const std::vector<int8_t> i8 = {-128, 0, 127};
  EXPECT_EQ(to_float_vector(i8), (std::vector<float>{-128.0f, 0.0f, 127.0f}));
  const std::vector<float> f = {1.0f, -2.0f};
  const auto b = to_bf16_vector(f);
  EXPECT_EQ(to_float_vector(b), f);
  const std::vector<fp8_e4m3_t> e = {fp8_e4m3_t{0x38}, fp8_e4m3_t{0xC0}};
  EXPECT_EQ(to_float_vector(e), f);
}

}  // namespace
}  // namespace slidesparse
