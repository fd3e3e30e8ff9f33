// GPU embedding lookup against core's embedding_ref, bit for bit: aligned and odd hidden sizes,
// repeated tokens, and out-of-range ids (NaN rows and the error flag).
#include "kernels/embedding.h"

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

void run(int64_t vocab, int64_t hidden, std::vector<int32_t> tokens, bool expect_flag) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("vocab=" + std::to_string(vocab) + " hidden=" + std::to_string(hidden) +
               " m=" + std::to_string(tokens.size()) + " seed=" + std::to_string(seed));
  const auto table = test::random_bf16_rows(vocab, hidden, seed);
  const int64_t m = static_cast<int64_t>(tokens.size());
  const DeviceBuffer d_table = test::upload_bf16(table);
  const DeviceBuffer d_tokens = test::upload(test::as_bytes(tokens));
  GuardedBuffer out(static_cast<size_t>(m * hidden) * 2);
  DeviceBuffer flag(sizeof(int));
  SS_CUDA_CHECK(cudaMemset(flag.get(), 0, sizeof(int)));
  launch_embedding(d_table.get(), vocab, hidden, d_tokens.as<int32_t>(), m, out.get(), nullptr,
                   flag.as<int>());
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  test::compare_bf16(test::bytes_to_bf16(out.download()),
                     embedding_ref(table, vocab, hidden, tokens), hidden, "embedding", true);
  EXPECT_TRUE(out.sentinel_intact());
  int host_flag = 0;
  SS_CUDA_CHECK(cudaMemcpy(&host_flag, flag.get(), sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_EQ(host_flag, expect_flag ? 1 : 0);
}

TEST(EmbeddingKernel, MatchesReference) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(7);
  for (int64_t hidden : {8, 33, 1000, 3584}) {
    for (int64_t m : {1, 17, 1025}) {
      std::vector<int32_t> tokens(static_cast<size_t>(m));
      for (auto& t : tokens) t = static_cast<int32_t>(rng() % 301);
      if (m > 1) tokens[1] = tokens[0];
      run(301, hidden, tokens, false);
    }
  }
}

TEST(EmbeddingKernel, OutOfRangeTokensGiveNaNRowsAndSetTheFlag) {
  SS_SKIP_WITHOUT_GPU();
  run(100, 64, {3, -1, 99, 100, 7}, true);
  run(100, 33, {100000}, true);
}

}  // namespace
}  // namespace slidesparse
