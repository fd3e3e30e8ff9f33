// GPU argmax against core's argmax_ref: random rows with odd vocab sizes and strides, ties
// (repeated maxima, +0 / -0), NaN (never wins; all-NaN rows give 0), infinities.
#include "kernels/sampling.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/kernel_test_util.h"
#include "kernels/producer_test_util.h"
#include "slidesparse/core/ops_ref.h"

namespace slidesparse {
namespace {

using test::GuardedBuffer;

void run(const std::vector<bf16_t>& logits, int64_t m, int64_t vocab, int64_t ld) {
  std::vector<bf16_t> strided(static_cast<size_t>(m * ld), bf16_from_float(1e30f));
  for (int64_t r = 0; r < m; ++r)
    std::copy(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab,
              strided.begin() + r * ld);
  const DeviceBuffer d_logits = test::upload_bf16(strided);
  GuardedBuffer tokens(static_cast<size_t>(m) * 4);
  launch_argmax(d_logits.get(), ld, m, vocab, tokens.as<int32_t>(), nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  test::expect_bytes_equal(tokens.download(), test::as_bytes(argmax_ref(logits, m, vocab)), 4,
                           "tokens");
  EXPECT_TRUE(tokens.sentinel_intact());
}

TEST(ArgmaxKernel, MatchesReferenceOnRandomRows) {
  SS_SKIP_WITHOUT_GPU();
  for (int64_t vocab : {1, 33, 1000, 32000, 152064}) {
    for (int64_t m : {1, 17, 33}) {
      const uint64_t seed = test::fresh_seed();
      SCOPED_TRACE("vocab=" + std::to_string(vocab) + " m=" + std::to_string(m) +
                   " seed=" + std::to_string(seed));
      const auto logits = test::random_bf16_rows(m, vocab, seed);
      run(logits, m, vocab, vocab);
      run(logits, m, vocab, vocab + 3);  // odd stride: element loads
    }
  }
}

TEST(ArgmaxKernel, TiesNaNAndInfinities) {
  SS_SKIP_WITHOUT_GPU();
  const int64_t vocab = 1031, m = 6;
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  auto logits = test::random_bf16_rows(m, vocab, seed, -1.0f, -0.5f);  // |x| < ~3
  auto at = [&](int64_t r, int64_t c) -> bf16_t& {
    return logits[static_cast<size_t>(r * vocab + c)];
  };
  const bf16_t nan{0x7FC0}, neg_nan{0xFFC0}, inf{0x7F80}, neg_inf{0xFF80}, pz{0x0000}, nz{0x8000};
  // Row 0: the maximum repeated at 900, 17 and 500: 17 wins.
  at(0, 900) = at(0, 17) = at(0, 500) = bf16_from_float(100.0f);
  // Row 1: all values negative except -0 at 800 and +0 at 40 (tie: 40 wins), NaN elsewhere.
  for (int64_t c = 0; c < vocab; ++c) at(1, c) = bf16_from_float(-std::abs(to_float(at(1, c))) - 1);
  at(1, 800) = nz;
  at(1, 40) = pz;
  at(1, 3) = nan;
  at(1, 1030) = neg_nan;
  // Row 2: only NaN: 0.
  for (int64_t c = 0; c < vocab; ++c) at(2, c) = c % 2 ? nan : neg_nan;
  // Row 3: +inf at 1030 and 600 (600 wins), NaN before them.
  at(3, 1) = nan;
  at(3, 1030) = at(3, 600) = inf;
  // Row 4: every value -inf except NaN: the first -inf.
  for (int64_t c = 0; c < vocab; ++c) at(4, c) = c < 5 ? nan : neg_inf;
  // Row 5: a tie across the vector tail (vocab is not a multiple of 8).
  at(5, 1030) = at(5, 1029) = bf16_from_float(50.0f);
  run(logits, m, vocab, vocab);
  run(logits, m, vocab, 1040);
}

}  // namespace
}  // namespace slidesparse
