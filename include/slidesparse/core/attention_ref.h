// Scaled dot-product attention with grouped-query heads, CPU reference (CONTRACTS.md step 4):
// plain loops in double, rounded once to float. The GPU attention (FlashInfer) is compared with
// it within a tolerance, never bit for bit.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace slidesparse {

// q [t, hq, d], k and v [s, hkv, d] (row-major, heads contiguous per token) -> out [t, hq, d].
// Query head h reads kv head h / (hq / hkv) (hq a multiple of hkv). Query i sits at position
// s - t + i (the queries are the last t tokens of the s keys, t <= s); causal: it sees keys
// 0 .. s - t + i, else all s keys. Scores q.k * sm_scale, softmax with the maximum subtracted,
// weighted sum of v: all in double.
std::vector<float> attention_ref(std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v, int64_t t, int64_t s, int64_t hq,
                                 int64_t hkv, int64_t d, float sm_scale, bool causal);

}  // namespace slidesparse
