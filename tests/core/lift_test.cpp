// Activation lifting map: slot g*S + 4w + j holds x[g*L + 2w + j], zero past K and in padding.
#include "slidesparse/core/lift.h"

#include <gtest/gtest.h>

#include "core/random_data.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(Lift, SourceColumnsL8) {
  const Sparsity sp = Sparsity::from_block(8);
  const auto cols = lift_source_cols(8, sp);
  ASSERT_EQ(cols.size(), 32u);
  const std::vector<int64_t> expected_real = {0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7};
  for (size_t s = 0; s < expected_real.size(); ++s) EXPECT_EQ(cols[s], expected_real[s]);
  for (size_t s = expected_real.size(); s < cols.size(); ++s) EXPECT_EQ(cols[s], -1);
  EXPECT_EQ(lift_source_col(5, 8, sp), 3);
}

TEST(Lift, SourceColumnsBeyondK) {
  const Sparsity sp = Sparsity::from_block(4);  // K = 5: K_pad 8, slots 5..7 are K padding
  const auto cols = lift_source_cols(5, sp);
  ASSERT_EQ(cols.size(), 32u);
  for (int64_t s = 0; s < 5; ++s) EXPECT_EQ(cols[s], s);
  for (int64_t s = 5; s < 32; ++s) EXPECT_EQ(cols[s], -1);
}

TEST(Lift, SlotOutOfRangeThrows) {
  const Sparsity sp = Sparsity::from_block(6);
  EXPECT_THROW(lift_source_col(-1, 12, sp), Error);
  EXPECT_THROW(lift_source_col(sp.k_slide(12), 12, sp), Error);
  EXPECT_THROW(lift_source_col(0, 0, sp), Error);
}

TEST(Lift, ActivationsFollowTheMapForEveryBlock) {
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& shape : test::test_shapes()) {
      const int64_t m = shape.m, k = shape.k, k_slide = sp.k_slide(k);
      const auto x = test::random_floats(m * k, 17 * block + k);
      const auto lifted = lift_activations<float>(x, m, k, sp);
      ASSERT_EQ(static_cast<int64_t>(lifted.size()), m * k_slide);
      const int64_t slots = sp.slots_per_block();
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t s = 0; s < k_slide; ++s) {
          const int64_t g = s / slots, w = (s % slots) / 4, j = s % 4;
          const int64_t col = g * block + 2 * w + j;
          const bool real = g < sp.k_pad(k) / block && col < k;
          EXPECT_EQ(lifted[r * k_slide + s], real ? x[r * k + col] : 0.0f)
              << sp.name() << " K " << k << " row " << r << " slot " << s;
        }
      }
    }
  }
}

TEST(Lift, EveryStorageType) {
  const Sparsity sp = Sparsity::from_block(6);
  const auto i8 = test::random_int8(2 * 9, 1);
  const auto lifted_i8 = lift_activations<int8_t>(i8, 2, 9, sp);
  EXPECT_EQ(lifted_i8[4], i8[2]);  // window 1 starts at column 2
  const auto b16 = test::random_bf16(2 * 9, 2);
  const auto lifted_b16 = lift_activations<bf16_t>(b16, 2, 9, sp);
  EXPECT_EQ(lifted_b16[32 + 9], b16[9 + 7]);  // row 1, block 1, window 0, j = 1 -> column 7
  std::vector<fp8_e4m3_t> f8(18, e4m3_from_float(1.0f));
  const auto lifted_f8 = lift_activations<fp8_e4m3_t>(f8, 2, 9, sp);
  EXPECT_EQ(lifted_f8.size(), 64u);
}

TEST(Lift, BadShapesThrow) {
  const Sparsity sp = Sparsity::from_block(8);
  const std::vector<float> x(10, 1.0f);
  EXPECT_THROW(lift_activations<float>(x, 3, 4, sp), Error);
  EXPECT_THROW(lift_activations<float>(x, 0, 10, sp), Error);
  EXPECT_THROW(lift_activations<float>({}, 1, 0, sp), Error);
}

}  // namespace
}  // namespace slidesparse

namespace slidesparse {
namespace {

TEST(Lift, SixtyFourBitColumns) {
  // K far beyond 2^31: the map is pure index arithmetic and must not wrap.
  const Sparsity sp = Sparsity::from_block(10);
  const int64_t k = (int64_t{1} << 40) + 8;  // 2^40 % 10 == 6: the last block has 4 columns
  const int64_t k_slide = sp.k_slide(k);
  const int64_t last_block = sp.k_pad(k) / 10 - 1;
  // Slot 5 of the last block: window 1, j = 1 -> column last_block*10 + 3, which is < K.
  EXPECT_EQ(lift_source_col(last_block * 16 + 5, k, sp), last_block * 10 + 3);
  // Slot 9 of the last block: window 2, j = 1 -> column last_block*10 + 5 >= K: zero.
  EXPECT_EQ(lift_source_col(last_block * 16 + 9, k, sp), -1);
  EXPECT_EQ(lift_source_col(k_slide - 1, k, sp), -1);
}

}  // namespace
}  // namespace slidesparse
