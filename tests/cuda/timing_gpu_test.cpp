// The GPU part of the timing helpers, on cudaMemsetAsync as the timed work.
#include <gtest/gtest.h>

#include <vector>

#include "common/gpu_skip.h"
#include "cuda/resources.h"
#include "cuda/timing.h"

namespace slidesparse {
namespace {

TEST(TimeOne, RunsWarmupPlusRepeatsCallsWithIterationNumbersInOrder) {
  SS_SKIP_WITHOUT_GPU();
  CudaStream stream;
  DeviceBuffer buffer(1 << 20);
  std::vector<int> iterations;
  const TimingOptions options{.warmup = 3, .repeats = 17};
  const TimingResult t = time_one(
      stream.get(),
      [&](int i) {
        iterations.push_back(i);
        SS_CUDA_CHECK(cudaMemsetAsync(buffer.get(), i & 0xff, buffer.bytes(), stream.get()));
      },
      options);
  ASSERT_EQ(iterations.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(iterations[i], i);
  EXPECT_EQ(t.runs, 17);
  EXPECT_GT(t.min_ms, 0.0);
  EXPECT_LE(t.min_ms, t.median_ms);
  EXPECT_LE(t.median_ms, t.p90_ms);
}

TEST(TimeInterleaved, CallsTheClosuresRoundRobinAndTimesEach) {
  SS_SKIP_WITHOUT_GPU();
  CudaStream stream;
  DeviceBuffer small(1 << 12), large(64 << 20);
  std::vector<int> order;
  const TimingOptions options{.warmup = 2, .repeats = 9};
  const auto results = time_interleaved(
      stream.get(),
      {[&](int) {
         order.push_back(0);
         SS_CUDA_CHECK(cudaMemsetAsync(small.get(), 1, small.bytes(), stream.get()));
       },
       [&](int) {
         order.push_back(1);
         SS_CUDA_CHECK(cudaMemsetAsync(large.get(), 1, large.bytes(), stream.get()));
       }},
      options);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_EQ(order.size(), 22u);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<int>(i % 2));
  for (const auto& r : results) {
    EXPECT_EQ(r.runs, 9);
    EXPECT_GT(r.min_ms, 0.0);
    EXPECT_LE(r.min_ms, r.median_ms);
    EXPECT_LE(r.median_ms, r.p90_ms);
  }
  // 64 MiB takes longer to set than 4 KiB.
  EXPECT_GT(results[1].median_ms, results[0].median_ms);
}

}  // namespace
}  // namespace slidesparse
