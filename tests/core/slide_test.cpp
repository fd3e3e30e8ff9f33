// Sliding window decomposition: the DESIGN.md worked example, W' is 2:4, unslide(W') == W and
// W.x == W'.lift(x) for every L in 4..16 (integer exactly, float to rounding), and bad input.
#include "slidesparse/core/slide.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/random_data.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

template <class T>
int64_t count_nonzeros(const std::vector<T>& v) {
  int64_t n = 0;
  for (const T& x : v) n += is_zero(x) ? 0 : 1;
  return n;
}

TEST(Slide, DesignWorkedExampleL8) {
  const Sparsity sp = Sparsity::from_block(8);
  const std::vector<float> w = {1, 0, 2, 3, 0, 4, 5, 6};
  const auto slid = slide_weights<float>(w, 1, 8, sp);
  ASSERT_EQ(slid.size(), 32u);  // 12 slots rounded up to 32
  const std::vector<float> windows = {1, 0, 2, 0, 0, 3, 0, 4, 0, 0, 5, 6};
  for (size_t i = 0; i < windows.size(); ++i) EXPECT_EQ(slid[i], windows[i]) << "slot " << i;
  for (size_t i = windows.size(); i < slid.size(); ++i) EXPECT_EQ(slid[i], 0.0f) << "slot " << i;
  EXPECT_EQ(unslide_weights<float>(slid, 1, 8, sp), w);
}

TEST(Slide, TwoToFourIsTheIdentityPlusPadding) {
  const Sparsity sp = Sparsity::from_block(4);
  const std::vector<float> w = {0, 1, 0, 2, 3, 0, 4, 0, 5};
  const auto slid = slide_weights<float>(w, 1, 9, sp);
  ASSERT_EQ(slid.size(), 32u);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(slid[i], w[i]);
  for (size_t i = w.size(); i < slid.size(); ++i) EXPECT_EQ(slid[i], 0.0f);
}

TEST(Slide, LosslessForEveryBlockAndShape) {
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& shape : test::test_shapes()) {
      SCOPED_TRACE(sp.name() + " K " + std::to_string(shape.k));
      const int64_t n = shape.n, k = shape.k, k_slide = sp.k_slide(k);
      auto w = test::random_floats(n * k, 7 * block + k);
      prune_magnitude<float>(w, n, k, sp);
      const auto slid = slide_weights<float>(w, n, k, sp);
      ASSERT_EQ(static_cast<int64_t>(slid.size()), n * k_slide);
      EXPECT_EQ(k_slide % kSlideKAlign, 0);
      EXPECT_NO_THROW(check_2to4<float>(slid, n, k_slide, "W'"));
      EXPECT_EQ(count_nonzeros(slid), count_nonzeros(w)) << "every non-zero appears exactly once";
      EXPECT_EQ(unslide_weights<float>(slid, n, k, sp), w);
    }
  }
}

TEST(Slide, AdversarialBlocksAlwaysFit) {
  // Every placement of the 2 zeros in a block (all C(L,2) of them) must decompose.
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    std::vector<float> rows;
    int64_t count = 0;
    for (int z0 = 0; z0 < block; ++z0) {
      for (int z1 = z0 + 1; z1 < block; ++z1) {
        for (int c = 0; c < block; ++c) rows.push_back(c == z0 || c == z1 ? 0.0f : 1.0f + c);
        ++count;
      }
    }
    const auto slid = slide_weights<float>(rows, count, block, sp);
    EXPECT_NO_THROW(check_2to4<float>(slid, count, sp.k_slide(block), sp.name()));
    EXPECT_EQ(unslide_weights<float>(slid, count, block, sp), rows);
  }
}

TEST(Slide, IntegerProductIsExact) {
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& shape : test::test_shapes()) {
      SCOPED_TRACE(sp.name() + " K " + std::to_string(shape.k));
      const int64_t m = shape.m, n = shape.n, k = shape.k, k_slide = sp.k_slide(k);
      auto w = test::random_int8(n * k, 3 * block + k);
      prune_magnitude<int8_t>(w, n, k, sp);
      const auto x = test::random_int8(m * k, 5 * block + k);
      const auto dense = gemm_int8_ref(x, w, m, n, k);
      const auto x_lift = lift_activations<int8_t>(x, m, k, sp);
      const auto w_slid = slide_weights<int8_t>(w, n, k, sp);
      EXPECT_EQ(gemm_int8_ref(x_lift, w_slid, m, n, k_slide), dense);
    }
  }
}

TEST(Slide, FloatProductMatchesToRounding) {
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& shape : test::test_shapes()) {
      SCOPED_TRACE(sp.name() + " K " + std::to_string(shape.k));
      const int64_t m = shape.m, n = shape.n, k = shape.k, k_slide = sp.k_slide(k);
      auto w = test::random_floats(n * k, 11 * block + k);
      prune_magnitude<float>(w, n, k, sp);
      const auto x = test::random_floats(m * k, 13 * block + k);
      const auto dense = gemm_float_ref(x, w, m, n, k);
      const auto sparse = gemm_float_ref(lift_activations<float>(x, m, k, sp),
                                         slide_weights<float>(w, n, k, sp), m, n, k_slide);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double magnitude = 0.0;
          for (int64_t c = 0; c < k; ++c)
            magnitude += std::fabs(double(x[i * k + c]) * w[j * k + c]);
          // Both sums are formed in double and rounded once to float.
          EXPECT_NEAR(sparse[i * n + j], dense[i * n + j], 1e-6 * magnitude + 1e-30)
              << "m " << i << " n " << j;
        }
      }
    }
  }
}

TEST(Slide, EveryStorageTypeRoundTrips) {
  const Sparsity sp = Sparsity::from_block(10);
  const int64_t n = 6, k = 77;
  auto b16 = test::random_bf16(n * k, 21);
  prune_magnitude<bf16_t>(b16, n, k, sp);
  const auto b16_slid = slide_weights<bf16_t>(b16, n, k, sp);
  EXPECT_NO_THROW(check_2to4<bf16_t>(b16_slid, n, sp.k_slide(k), "bf16 W'"));
  EXPECT_EQ(unslide_weights<bf16_t>(b16_slid, n, k, sp), b16);
  std::vector<fp8_e4m3_t> f8;
  for (float f : test::random_floats(n * k, 22)) f8.push_back(e4m3_from_float(f));
  prune_magnitude<fp8_e4m3_t>(f8, n, k, sp);
  const auto f8_slid = slide_weights<fp8_e4m3_t>(f8, n, k, sp);
  EXPECT_NO_THROW(check_2to4<fp8_e4m3_t>(f8_slid, n, sp.k_slide(k), "fp8 W'"));
  EXPECT_EQ(unslide_weights<fp8_e4m3_t>(f8_slid, n, k, sp), f8);
}

TEST(Slide, WeightBreakingThePatternNamesRowAndBlock) {
  const Sparsity sp = Sparsity::from_block(6);
  const int64_t n = 4, k = 30;
  auto w = test::random_floats(n * k, 31);
  prune_magnitude<float>(w, n, k, sp);
  w[3 * k + 13] = 1.0f;  // row 3, block 2 (cols 12..17) now has 5 non-zeros (4 allowed)
  w[3 * k + 14] = 1.0f;
  try {
    slide_weights<float>(w, n, k, sp);
    FAIL() << "expected PatternError";
  } catch (const PatternError& e) {
    EXPECT_EQ(e.row(), 3);
    EXPECT_EQ(e.block(), 2);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("row 3, block 2 (cols 12..17)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2:6"), std::string::npos) << msg;
  }
}

TEST(Slide, BadShapesThrow) {
  const Sparsity sp = Sparsity::from_block(8);
  const std::vector<float> w(16, 0.0f);
  EXPECT_THROW(slide_weights<float>(w, 3, 8, sp), Error);
  EXPECT_THROW(slide_weights<float>(w, 2, 0, sp), Error);
  EXPECT_THROW(slide_weights<float>({}, 0, 0, sp), Error);
  EXPECT_THROW(unslide_weights<float>(w, 1, 8, sp), Error);  // W' must have K' = 32 columns
  EXPECT_THROW(unslide_weights<float>(w, 1, 0, sp), Error);
}

TEST(Slide, UnslideRejectsInvalidDecompositions) {
  const Sparsity sp = Sparsity::from_block(8);
  std::vector<float> slid(32, 0.0f);
  slid[20] = 1.0f;  // slot 20 is alignment padding (12 real slots per block)
  EXPECT_THROW(unslide_weights<float>(slid, 1, 8, sp), Error);
  slid.assign(32, 0.0f);
  slid[2] = 1.0f;  // window 0, j = 2: column 2
  slid[4] = 2.0f;  // window 1, j = 0: column 2 as well
  try {
    unslide_weights<float>(slid, 1, 8, sp);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("column 2"), std::string::npos) << e.what();
  }
  // K = 7: slot 11 (window 2, j = 3) maps to column 7, which is K padding.
  slid.assign(32, 0.0f);
  slid[11] = 1.0f;
  EXPECT_THROW(unslide_weights<float>(slid, 1, 7, sp), Error);
}

TEST(Slide, TwoToFourChecker) {
  const std::vector<float> ok = {1, 0, 0, 2, 0, 3, 4, 0};
  EXPECT_FALSE(find_2to4_violation<float>(ok, 1, 8).has_value());
  const std::vector<float> bad = {1, 0, 0, 2, 0, 3, 4, 5};
  const auto v = find_2to4_violation<float>(bad, 1, 8);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->block, 1);
  EXPECT_EQ(v->nonzeros, 3);
  try {
    check_2to4<float>(bad, 1, 8, "W'");
    FAIL() << "expected PatternError";
  } catch (const PatternError& e) {
    EXPECT_EQ(std::string(e.what()),
              "W': breaks 2:4: row 0, group 1 (cols 4..7): 3 non-zeros, at most 2 allowed");
  }
  EXPECT_THROW(find_2to4_violation<float>(ok, 3, 4), Error);
  EXPECT_THROW(find_2to4_violation<float>(std::vector<float>(6, 0.0f), 1, 6), Error);
}

}  // namespace
}  // namespace slidesparse

namespace slidesparse {
namespace {

TEST(Slide, ElementCountOverflowIsAnErrorNotACrash) {
  const Sparsity sp = Sparsity::from_block(8);
  const int64_t huge = int64_t{1} << 62;
  EXPECT_THROW(slide_weights<float>({}, huge, 8, sp), Error);
  EXPECT_THROW(slide_weights<float>({}, 4, huge, sp), Error);
  EXPECT_THROW(lift_activations<float>({}, huge, huge, sp), Error);
  EXPECT_THROW(gemm_int8_ref({}, {}, huge, huge, 4), Error);
}

}  // namespace
}  // namespace slidesparse
