// The reference system's definitions of the prefill and decode benchmarks (shared DESIGN.md §3),
// as batches: what one repetition of a case at M runs, and how large the one engine of an
// invocation must be to run every case of it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace slidesparse {

enum class ThroughputPhase : uint8_t { kPrefill, kDecode };
std::string_view phase_name(ThroughputPhase phase);  // "prefill", "decode"

inline constexpr int64_t kPrefillMaxPromptLen = 1024;  // longer steps are split into sequences
inline constexpr int64_t kDecodePromptLen = 16;
inline constexpr int64_t kDecodeOutputLen = 256;

// One repetition of a case: `sequences` prompts of `prompt_len` tokens, then `output_len` tokens
// per sequence (the first from the prefill step, the rest from decode steps).
//   prefill at M: ceil(M/1024) sequences of min(M, 1024) tokens, 1 output token (one step);
//   decode at M:  M sequences of 16 tokens, 256 output tokens (one prefill + 255 decode steps).
struct CasePlan {
  ThroughputPhase phase = ThroughputPhase::kPrefill;
  int64_t m = 0;
  int64_t sequences = 0;
  int64_t prompt_len = 0;
  int64_t output_len = 0;

  int64_t prompt_tokens() const { return sequences * prompt_len; }
  int64_t output_tokens() const { return sequences * output_len; }
  // Counted in tokens/s, as `vllm bench throughput` counts them: prompt + output.
  int64_t total_tokens() const { return prompt_tokens() + output_tokens(); }
  int64_t decode_steps() const { return output_len - 1; }
  // KV room reserved per sequence at start_batch: the prompt for prefill (its sampled token is
  // never fed back), prompt + output for decode.
  int64_t kv_tokens_per_sequence() const {
    return phase == ThroughputPhase::kPrefill ? prompt_len : prompt_len + output_len;
  }
};

// Throws Error for M < 1.
CasePlan plan_case(ThroughputPhase phase, int64_t m);

// The engine sizes shared by every case of an invocation.
struct EngineSizes {
  int64_t max_batch = 0;            // most sequences of any case
  int64_t max_tokens_per_step = 0;  // largest prefill step (tokens over all its sequences)
  int64_t kv_cache_tokens = 0;      // most KV tokens any case holds, pages rounded per sequence
};

// Throws Error for an empty list, M < 1 or page_size < 1.
EngineSizes plan_engine_sizes(ThroughputPhase phase, std::span<const int64_t> ms, int page_size);

}  // namespace slidesparse
