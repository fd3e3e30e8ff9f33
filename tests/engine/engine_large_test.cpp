// M = 65536 tokens in one prefill step (64 sequences of 1024) on Qwen2.5-7B's full-size shapes
// (gate_up N = 37888, down K = 18944: M.N and M.K pass 2^31), two decoder layers, random weights
// made on the GPU: the logits stay finite and the last sequence gives what it gives alone.
#include <gtest/gtest.h>

#include <cmath>

#include "common/gpu_skip.h"
#include "cuda/device_info.h"
#include "engine_test_util.h"

namespace slidesparse::test {
namespace {

void run_large(DType compute, GemmBackend backend, std::optional<Sparsity> sp) {
  const auto gpu = query_gpu();
  if (gpu->memory_bytes < (int64_t(60) << 30))
    GTEST_SKIP() << "needs 60 GiB of GPU memory; " << gpu->name << " has "
                 << (gpu->memory_bytes >> 30) << " GiB";
  if (compute == DType::kFP8E4M3 && gpu->cc() < 89)
    GTEST_SKIP() << "fp8 needs compute capability >= 8.9";
  ModelSource src = ModelSource::random("Qwen2.5-7B", 3);
  src.layers_override = 2;
  EngineOptions o;
  o.compute = compute;
  o.backend = backend;
  o.sparsity = sp;
  o.max_batch = 64;
  o.max_tokens_per_step = 65536;
  o.kv_cache_tokens = 65536 + 64 * 16;
  auto engine = Engine::load(src, o);
  const int64_t V = engine->config().vocab;
  std::vector<std::vector<int32_t>> prompts;
  for (int b = 0; b < 64; ++b) prompts.push_back(test_prompt(1024, V, 100 + b));
  engine->start_batch(std::vector<int64_t>(64, 1040));
  const StepResult all = engine->prefill(prompts, true);
  engine->end_batch();
  int64_t nonfinite = 0;
  for (float v : all.logits) nonfinite += !std::isfinite(v);
  EXPECT_EQ(nonfinite, 0);
  engine->start_batch(std::vector<int64_t>{1040});
  const StepResult alone = engine->prefill(one(prompts.back()), true);
  EXPECT_EQ(alone.tokens[0], all.tokens.back());
  const std::vector<float> last(all.logits.end() - V, all.logits.end());
  const LogitStats s = compare_logits(last, alone.logits);
  std::printf("[ M=65536 %s ] step %.1f ms, last sequence vs alone: %s\n",
              engine->describe().c_str(), all.gpu_ms, describe(s).c_str());
  EXPECT_LE(s.rms_diff, 0.01 * s.rms_ref) << describe(s);
}

TEST(EngineLarge, Prefill65536TokensInt8SlideSparse) {
  SS_SKIP_WITHOUT_GPU();
  run_large(DType::kI8, GemmBackend::kCusparseLt, Sparsity::parse("2:8"));
}
TEST(EngineLarge, Prefill65536TokensFp8Dense) {
  SS_SKIP_WITHOUT_GPU();
  run_large(DType::kFP8E4M3, GemmBackend::kCublasLt, std::nullopt);
}

}  // namespace
}  // namespace slidesparse::test
