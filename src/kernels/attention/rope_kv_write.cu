// Fused RoPE + KV-cache write. One block per token: its threads take pairs of adjacent
// rotation pairs (i, i+1) x (i + D/2, i + 1 + D/2) of every q and k head, rotate them in float
// with separately rounded products (no FMA contraction: the CPU reference rounds each product),
// store bf16 back into the qkv row and, for k, into the cache slot; then the v row is copied.
#include <cuda_bf16.h>

#include <cstdint>

#include "cuda/check.h"
#include "kernels/attention/rope_kv_write.h"
#include "slidesparse/error.h"

namespace slidesparse {

namespace {

constexpr int kThreads = 128;

__device__ __forceinline__ float rotate_first(float x, float partner, float c, float s) {
  return __fsub_rn(__fmul_rn(x, c), __fmul_rn(partner, s));  // x[i]*cos - x[i+D/2]*sin
}
__device__ __forceinline__ float rotate_second(float x, float partner, float c, float s) {
  return __fadd_rn(__fmul_rn(x, c), __fmul_rn(partner, s));  // x[i]*cos + x[i-D/2]*sin
}

__global__ void rope_kv_write_kernel(__nv_bfloat16* __restrict__ qkv, int64_t ld_qkv,
                                     int num_q_heads, int num_kv_heads, int head_dim,
                                     const int32_t* __restrict__ positions,
                                     const float* __restrict__ cos_sin, int64_t max_positions,
                                     const int64_t* __restrict__ kv_slots, int64_t num_slots,
                                     __nv_bfloat16* __restrict__ cache_k,
                                     __nv_bfloat16* __restrict__ cache_v) {
  const int64_t token = blockIdx.x;
  __nv_bfloat16* row = qkv + token * ld_qkv;
  const int32_t position = positions[token];
  const int64_t slot = kv_slots[token];
  // A bad position or a slot past the cache is a caller bug: NaN q/k, nothing written.
  const bool token_ok = position >= 0 && int64_t(position) < max_positions && slot < num_slots;
  const float* table = cos_sin + (token_ok ? int64_t(position) * head_dim : 0);
  const int64_t row_elems = int64_t(num_kv_heads) * head_dim;
  const bool write_cache = token_ok && slot >= 0;  // slot < 0: a padding row
  __nv_bfloat16* k_dst = write_cache ? cache_k + slot * row_elems : nullptr;
  __nv_bfloat16* v_dst = write_cache ? cache_v + slot * row_elems : nullptr;

  const int half = head_dim / 2;
  const int pairs_per_head = half / 2;  // bf16x2 loads: two rotation pairs per item
  const int rotated_heads = num_q_heads + num_kv_heads;
  const int items = rotated_heads * pairs_per_head;
  for (int item = threadIdx.x; item < items; item += blockDim.x) {
    const int head = item / pairs_per_head;
    const int i = (item - head * pairs_per_head) * 2;  // first of the two pairs, i < D/2
    const int64_t base = int64_t(head) * head_dim;     // k heads follow the q heads in the row
    __nv_bfloat162* lo_ptr = reinterpret_cast<__nv_bfloat162*>(row + base + i);
    __nv_bfloat162* hi_ptr = reinterpret_cast<__nv_bfloat162*>(row + base + i + half);
    const float2 lo = __bfloat1622float2(*lo_ptr);
    const float2 hi = __bfloat1622float2(*hi_ptr);
    float2 out_lo, out_hi;
    if (token_ok) {
      const float c0 = table[i], c1 = table[i + 1];
      const float s0 = table[half + i], s1 = table[half + i + 1];
      out_lo = make_float2(rotate_first(lo.x, hi.x, c0, s0), rotate_first(lo.y, hi.y, c1, s1));
      out_hi = make_float2(rotate_second(hi.x, lo.x, c0, s0), rotate_second(hi.y, lo.y, c1, s1));
    } else {
      out_lo = out_hi = make_float2(__int_as_float(0x7fc00000), __int_as_float(0x7fc00000));
    }
    const __nv_bfloat162 r_lo = __float22bfloat162_rn(out_lo);
    const __nv_bfloat162 r_hi = __float22bfloat162_rn(out_hi);
    *lo_ptr = r_lo;
    *hi_ptr = r_hi;
    if (head >= num_q_heads && k_dst != nullptr) {
      const int64_t k_base = int64_t(head - num_q_heads) * head_dim;
      *reinterpret_cast<__nv_bfloat162*>(k_dst + k_base + i) = r_lo;
      *reinterpret_cast<__nv_bfloat162*>(k_dst + k_base + i + half) = r_hi;
    }
  }
  if (v_dst == nullptr) return;
  const __nv_bfloat162* v_src =
      reinterpret_cast<const __nv_bfloat162*>(row + int64_t(rotated_heads) * head_dim);
  __nv_bfloat162* v_out = reinterpret_cast<__nv_bfloat162*>(v_dst);
  for (int64_t e = threadIdx.x; e < row_elems / 2; e += blockDim.x) v_out[e] = v_src[e];
}

}  // namespace

void launch_rope_kv_write(void* qkv, int64_t tokens, int64_t ld_qkv, int num_q_heads,
                          const KvCacheShape& shape, const int32_t* positions, const float* cos_sin,
                          int64_t max_positions, const int64_t* kv_slots, KvCacheLayer cache,
                          cudaStream_t stream) {
  SS_REQUIRE(tokens >= 0 && tokens <= int64_t(0x7fffffff),
             "launch_rope_kv_write: tokens " << tokens << " out of range");
  SS_REQUIRE(shape.head_dim >= 4 && shape.head_dim <= 256 && shape.head_dim % 4 == 0,
             "launch_rope_kv_write: head_dim " << shape.head_dim
                                               << " must be a multiple of 4 in [4, 256]");
  SS_REQUIRE(num_q_heads >= 1 && shape.num_kv_heads >= 1,
             "launch_rope_kv_write: head counts " << num_q_heads << " / " << shape.num_kv_heads
                                                  << " must be >= 1");
  const int64_t qkv_width = int64_t(num_q_heads + 2 * shape.num_kv_heads) * shape.head_dim;
  SS_REQUIRE(ld_qkv >= qkv_width && ld_qkv % 2 == 0,
             "launch_rope_kv_write: ld_qkv " << ld_qkv << " must be even and >= " << qkv_width);
  SS_REQUIRE(max_positions >= 1, "launch_rope_kv_write: max_positions " << max_positions);
  if (tokens == 0) return;
  SS_REQUIRE(qkv && positions && cos_sin && kv_slots && cache.k && cache.v,
             "launch_rope_kv_write: null pointer argument");
  SS_REQUIRE(reinterpret_cast<uintptr_t>(qkv) % 4 == 0 &&
                 reinterpret_cast<uintptr_t>(cache.k) % 4 == 0 &&
                 reinterpret_cast<uintptr_t>(cache.v) % 4 == 0,
             "launch_rope_kv_write: qkv and the cache arrays must be 4-byte aligned");
  rope_kv_write_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
      static_cast<__nv_bfloat16*>(qkv), ld_qkv, num_q_heads, shape.num_kv_heads, shape.head_dim,
      positions, cos_sin, max_positions, kv_slots, shape.num_slots(),
      static_cast<__nv_bfloat16*>(cache.k), static_cast<__nv_bfloat16*>(cache.v));
  SS_CHECK_LAUNCH("rope_kv_write_kernel");
}

}  // namespace slidesparse
