// Case planning and engine sizing of the prefill / decode benchmarks (throughput_plan.h), and the
// benchmarks' backend names (throughput_model.h).
#include "bench/throughput_plan.h"

#include <algorithm>

#include "bench/throughput_model.h"
#include "slidesparse/error.h"

namespace slidesparse {

std::string_view phase_name(ThroughputPhase phase) {
  return phase == ThroughputPhase::kPrefill ? "prefill" : "decode";
}

CasePlan plan_case(ThroughputPhase phase, int64_t m) {
  SS_REQUIRE(m >= 1, "bench " << phase_name(phase) << ": M must be >= 1, got " << m);
  CasePlan plan;
  plan.phase = phase;
  plan.m = m;
  if (phase == ThroughputPhase::kPrefill) {
    plan.sequences = (m + kPrefillMaxPromptLen - 1) / kPrefillMaxPromptLen;
    plan.prompt_len = std::min(m, kPrefillMaxPromptLen);
    plan.output_len = 1;
  } else {
    plan.sequences = m;
    plan.prompt_len = kDecodePromptLen;
    plan.output_len = kDecodeOutputLen;
  }
  return plan;
}

EngineSizes plan_engine_sizes(ThroughputPhase phase, std::span<const int64_t> ms, int page_size) {
  SS_REQUIRE(!ms.empty(), "bench " << phase_name(phase) << ": no M to size the engine for");
  SS_REQUIRE(page_size >= 1, "bench: page size must be >= 1, got " << page_size);
  EngineSizes sizes;
  for (int64_t m : ms) {
    const CasePlan plan = plan_case(phase, m);
    const int64_t per_sequence =
        (plan.kv_tokens_per_sequence() + page_size - 1) / page_size * page_size;
    sizes.max_batch = std::max(sizes.max_batch, plan.sequences);
    sizes.max_tokens_per_step = std::max(sizes.max_tokens_per_step, plan.prompt_tokens());
    sizes.kv_cache_tokens = std::max(sizes.kv_cache_tokens, plan.sequences * per_sequence);
  }
  return sizes;
}

BenchBackend parse_bench_backend(std::string_view text) {
  if (text == "cublaslt") return {"cublaslt", GemmBackend::kCublasLt, false};
  if (text == "cublaslt-fa") return {"cublaslt-fa", GemmBackend::kCublasLt, true};
  if (text == "cusparselt") return {"cusparselt", GemmBackend::kCusparseLt, false};
  throw Error("unknown backend '" + std::string(text) +
              "'; accepted: cublaslt (dense), cublaslt-fa (dense, FP8 fast accumulation), "
              "cusparselt (SlideSparse, needs --sparsity)");
}

}  // namespace slidesparse
