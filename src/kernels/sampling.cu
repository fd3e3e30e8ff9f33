// Greedy sampling: one block per logits row. Each value becomes a 64-bit key, larger for a
// larger value and, among equal values, for a lower index (value key in the high half, the
// complement of the index in the low half), so the row's argmax is one unsigned max reduction.
#include <limits>

#include "cuda/check.h"
#include "kernels/sampling.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

constexpr int kThreads = 512;
constexpr int kWarpSize = 32;

// Order-preserving 16-bit key of a bf16 value: -0 is +0, every NaN is below -inf (never wins;
// a row of only NaN gives index 0), as argmax_ref.
__device__ __forceinline__ uint32_t bf16_key(uint32_t bits) {
  if ((bits & 0x7FFFu) > 0x7F80u) return 0u;
  if (bits == 0x8000u) bits = 0;
  return (bits & 0x8000u) ? (~bits & 0xFFFFu) : (bits | 0x8000u);
}

__device__ __forceinline__ uint64_t make_key(uint32_t bits, int64_t col) {
  return (static_cast<uint64_t>(bf16_key(bits)) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(col));
}

__global__ void argmax_kernel(const uint16_t* logits, int64_t ld, int64_t vocab, bool vec_ok,
                              int32_t* tokens_out) {
  __shared__ uint64_t warp_best[kThreads / kWarpSize];
  const uint16_t* row = logits + static_cast<int64_t>(blockIdx.x) * ld;
  uint64_t best = 0;
  int64_t tail = 0;
  if (vec_ok) {
    const int64_t n_vec = vocab / 8;
    for (int64_t j = threadIdx.x; j < n_vec; j += blockDim.x) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(row) + j);
      const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        best = max(best, make_key(words[w] & 0xFFFFu, 8 * j + 2 * w));
        best = max(best, make_key(words[w] >> 16, 8 * j + 2 * w + 1));
      }
    }
    tail = n_vec * 8;
  }
  for (int64_t c = tail + threadIdx.x; c < vocab; c += blockDim.x)
    best = max(best, make_key(row[c], c));
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    best = max(best, __shfl_xor_sync(0xFFFFFFFFu, best, offset));
  if ((threadIdx.x & (kWarpSize - 1)) == 0) warp_best[threadIdx.x / kWarpSize] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x) / kWarpSize; ++w)
      best = max(best, warp_best[w]);
    best = max(best, warp_best[0]);
    tokens_out[blockIdx.x] = static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(best));
  }
}

}  // namespace

void launch_argmax(const void* logits, int64_t ld, int64_t m, int64_t vocab, int32_t* tokens_out,
                   cudaStream_t stream) {
  const char* op = "argmax";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  SS_REQUIRE(logits != nullptr && tokens_out != nullptr,
             op << ": logits and tokens_out must not be null");
  SS_REQUIRE(vocab > 0 && vocab <= std::numeric_limits<int32_t>::max(),
             op << ": vocab must be in [1, 2^31) (got " << vocab << ")");
  SS_REQUIRE(ld >= vocab, op << ": ld " << ld << " is smaller than vocab " << vocab);
  SS_REQUIRE(m <= std::numeric_limits<int32_t>::max(), op << ": m " << m << " is too large");
  const bool vec_ok = reinterpret_cast<uintptr_t>(logits) % 16 == 0 && (ld * 2) % 16 == 0;
  argmax_kernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(
      static_cast<const uint16_t*>(logits), ld, vocab, vec_ok, tokens_out);
  SS_CHECK_LAUNCH(op);
}

}  // namespace slidesparse
