// The CPU part of the timing helpers: median and the input-rotation rule.
#include "cuda/timing.h"

#include <gtest/gtest.h>

#include <vector>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(Median, EmptyIsZero) { EXPECT_EQ(median({}), 0.0); }

TEST(Median, OddCountIsTheMiddleOfTheSortedValues) {
  EXPECT_EQ(median({7.0}), 7.0);
  EXPECT_EQ(median({5.0, 1.0, 3.0}), 3.0);
  EXPECT_EQ(median({9.0, -2.0, 4.0, 4.0, 100.0}), 4.0);
}

TEST(Median, EvenCountIsTheMeanOfTheTwoMiddleValues) {
  EXPECT_EQ(median({2.0, 1.0}), 1.5);
  EXPECT_EQ(median({10.0, 1.0, 4.0, 2.0}), 3.0);
}

TEST(RotationCount, ZeroBytesNeedsOneCopy) { EXPECT_EQ(rotation_count(0, 50 << 20), 1); }

TEST(RotationCount, InputLargerThanTwiceTheL2IsNotRotated) {
  const int64_t l2 = 50ll << 20;
  EXPECT_EQ(rotation_count(static_cast<size_t>(2 * l2 + 1), l2), 1);
  EXPECT_EQ(rotation_count(static_cast<size_t>(10 * l2), l2), 1);
}

TEST(RotationCount, SmallInputCoversThreeTimesTheL2UpToTheCap) {
  const int64_t l2 = 60ll << 20;
  // 3 * L2 / bytes copies, rounded up, at least 2.
  EXPECT_EQ(rotation_count(static_cast<size_t>(l2), l2), 3);
  EXPECT_EQ(rotation_count(static_cast<size_t>(2 * l2), l2), 2);
  EXPECT_EQ(rotation_count(static_cast<size_t>(l2 / 2), l2, 8), 6);
  // Capped at max_copies, which is never below 2.
  EXPECT_EQ(rotation_count(1024, l2, 8), 8);
  EXPECT_EQ(rotation_count(1024, l2, 1), 2);
}

// Checked before any CUDA call, so no GPU (and no stream) is needed to see it.
TEST(TimeOne, RejectsZeroRepeatsBeforeTouchingTheGpu) {
  int calls = 0;
  EXPECT_THROW(time_one(
                   nullptr, [&](int) { ++calls; }, TimingOptions{.warmup = 0, .repeats = 0}),
               Error);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace slidesparse
