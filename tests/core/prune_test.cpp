// Magnitude pruning to Z:L and the pattern checker, for every L in 4..16 and odd K.
#include "slidesparse/core/prune.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/random_data.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(Prune, EveryBlockKeepsTheLargestAndMeetsThePattern) {
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& shape : test::test_shapes()) {
      const int64_t rows = shape.n, cols = shape.k;
      const auto original = test::random_floats(rows * cols, 100 + block + cols);
      auto w = original;
      prune_magnitude<float>(w, rows, cols, sp);
      SCOPED_TRACE(sp.name() + " cols " + std::to_string(cols));
      EXPECT_FALSE(find_pattern_violation<float>(w, rows, cols, sp).has_value());
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c0 = 0; c0 < cols; c0 += block) {
          const int64_t c1 = std::min<int64_t>(c0 + block, cols);
          const int64_t expect_zeroed = std::max<int64_t>(0, 2 - (block - (c1 - c0)));
          int64_t zeroed = 0;
          float min_kept = std::numeric_limits<float>::infinity(), max_dropped = 0.0f;
          for (int64_t c = c0; c < c1; ++c) {
            const float before = original[r * cols + c], after = w[r * cols + c];
            if (after == 0.0f) {
              ++zeroed;
              max_dropped = std::max(max_dropped, std::fabs(before));
            } else {
              EXPECT_EQ(after, before);
              min_kept = std::min(min_kept, std::fabs(before));
            }
          }
          EXPECT_EQ(zeroed, expect_zeroed) << "row " << r << " block " << c0 / block;
          EXPECT_LE(max_dropped, min_kept);
        }
      }
    }
  }
}

TEST(Prune, TailBlockPaddingCountsAsZeros) {
  const Sparsity sp = Sparsity::from_block(8);
  std::vector<float> w7 = {1, 2, 3, 4, 5, 6, 7};  // one padded column: prune one more
  prune_magnitude<float>(w7, 1, 7, sp);
  EXPECT_EQ(w7, (std::vector<float>{0, 2, 3, 4, 5, 6, 7}));
  std::vector<float> w6 = {1, 2, 3, 4, 5, 6};  // two padded columns: nothing to prune
  prune_magnitude<float>(w6, 1, 6, sp);
  EXPECT_EQ(w6, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(Prune, TiesGoToTheLowerColumnAndNaNIsKept) {
  const Sparsity sp = Sparsity::from_block(4);
  std::vector<float> ties = {-1, 1, 1, -1};
  prune_magnitude<float>(ties, 1, 4, sp);
  EXPECT_EQ(ties, (std::vector<float>{0, 0, 1, -1}));
  std::vector<float> with_nan = {std::numeric_limits<float>::quiet_NaN(), 1, 2, 3};
  prune_magnitude<float>(with_nan, 1, 4, sp);
  EXPECT_TRUE(std::isnan(with_nan[0]));
  EXPECT_EQ(with_nan[1], 0.0f);
  EXPECT_EQ(with_nan[2], 0.0f);
  EXPECT_EQ(with_nan[3], 3.0f);
}

TEST(Prune, WorksForEveryStorageType) {
  const Sparsity sp = Sparsity::from_block(6);
  const int64_t rows = 4, cols = 50;
  auto i8 = test::random_int8(rows * cols, 3, 1, 100);
  prune_magnitude<int8_t>(i8, rows, cols, sp);
  EXPECT_FALSE(find_pattern_violation<int8_t>(i8, rows, cols, sp));
  auto b16 = test::random_bf16(rows * cols, 4);
  prune_magnitude<bf16_t>(b16, rows, cols, sp);
  EXPECT_FALSE(find_pattern_violation<bf16_t>(b16, rows, cols, sp));
  std::vector<fp8_e4m3_t> f8;
  for (float f : test::random_floats(rows * cols, 5)) f8.push_back(e4m3_from_float(f));
  prune_magnitude<fp8_e4m3_t>(f8, rows, cols, sp);
  EXPECT_NO_THROW(check_pattern<fp8_e4m3_t>(f8, rows, cols, sp, "fp8 weight"));
}

TEST(Prune, ViolationNamesRowAndBlock) {
  const Sparsity sp = Sparsity::from_block(8);
  const int64_t rows = 3, cols = 20;
  std::vector<float> w(rows * cols, 0.0f);
  // Row 2, block 1 (cols 8..15): 7 non-zeros where 6 are allowed.
  for (int64_t c = 8; c < 15; ++c) w[2 * cols + c] = 1.0f;
  const auto v = find_pattern_violation<float>(w, rows, cols, sp);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->row, 2);
  EXPECT_EQ(v->block, 1);
  EXPECT_EQ(v->nonzeros, 7);
  EXPECT_EQ(v->max_nonzeros, 6);
  EXPECT_EQ(v->describe(), "row 2, block 1 (cols 8..15): 7 non-zeros, at most 6 allowed");
  try {
    check_pattern<float>(w, rows, cols, sp, "layers.0.mlp.down_proj");
    FAIL() << "expected PatternError";
  } catch (const PatternError& e) {
    EXPECT_EQ(e.row(), 2);
    EXPECT_EQ(e.block(), 1);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("layers.0.mlp.down_proj"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2:8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("row 2, block 1"), std::string::npos) << msg;
  }
}

TEST(Prune, TailBlockViolationAndNegativeZero) {
  const Sparsity sp = Sparsity::from_block(4);
  // Tail block of 3 columns with 3 non-zeros: padding supplies only one zero.
  std::vector<float> w = {1, 0, 0, 1, 1, 1, 1};
  const auto v = find_pattern_violation<float>(w, 1, 7, sp);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->block, 1);
  EXPECT_EQ(v->describe(), "row 0, block 1 (cols 4..6): 3 non-zeros, at most 2 allowed");
  // -0 counts as zero.
  std::vector<float> neg_zero = {-0.0f, -0.0f, 1, 1};
  EXPECT_FALSE(find_pattern_violation<float>(neg_zero, 1, 4, sp).has_value());
}

TEST(Prune, BadShapesThrow) {
  const Sparsity sp = Sparsity::from_block(4);
  std::vector<float> w(8, 1.0f);
  EXPECT_THROW(prune_magnitude<float>(w, 3, 4, sp), Error);
  EXPECT_THROW(prune_magnitude<float>(w, 0, 8, sp), Error);
  EXPECT_THROW(prune_magnitude<float>(std::span<float>(), 1, 1, sp), Error);
  EXPECT_THROW(find_pattern_violation<float>(w, 2, 5, sp), Error);
  EXPECT_THROW(check_pattern<float>(w, -1, -8, sp, "w"), Error);
  EXPECT_EQ(w, std::vector<float>(8, 1.0f)) << "a refused call must not touch its input";
}

}  // namespace
}  // namespace slidesparse
