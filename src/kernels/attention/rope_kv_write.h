// RoPE on the q and k parts of the fused qkv rows (in place), then k and v copied into the paged
// KV cache: the step between the qkv projection and attention. Arithmetic is the contract's
// (rotate-half form, float math on the cos/sin table, one bf16 rounding per element), so the
// result equals core/rope_ref.h bit for bit.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/attention/kv_cache.h"

namespace slidesparse {

// qkv: bf16 [tokens, ld_qkv], row t = q (num_q_heads * D), then k (Hkv * D), then v (Hkv * D),
//   ld_qkv >= (num_q_heads + 2 * Hkv) * D. q and k are rotated in place; v is not touched.
// positions: int32 [tokens], each in [0, max_positions); a position outside (a caller bug the
//   kernel cannot throw on) turns that token's q and k into NaN, so it cannot pass unnoticed.
// cos_sin: float [max_positions, D], row p = cos(p * inv_freq[i]) for i < D/2, then the sines.
// kv_slots: int64 [tokens], slot = page * page_size + offset in [0, shape.num_slots()); k and v
//   rows go to cache.k / cache.v at that slot; a negative slot skips the cache write (padding
//   rows). A slot >= num_slots is treated like a bad position.
// Throws Error on bad sizes (head_dim a multiple of 4 up to 256, ld_qkv too small, ...).
void launch_rope_kv_write(void* qkv, int64_t tokens, int64_t ld_qkv, int num_q_heads,
                          const KvCacheShape& shape, const int32_t* positions, const float* cos_sin,
                          int64_t max_positions, const int64_t* kv_slots, KvCacheLayer cache,
                          cudaStream_t stream);

}  // namespace slidesparse
