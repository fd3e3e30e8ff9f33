#include <cuda_bf16.h>

#include "bench/bench_data.h"
#include "cuda/check.h"

namespace slidesparse {
namespace {

__global__ void fill_random_bf16_kernel(__nv_bfloat16* out, int64_t count, uint64_t seed,
                                        float amplitude) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += stride) {
    uint64_t h =
        (static_cast<uint64_t>(i) ^ (seed * 0xD1B54A32D192ED03ull)) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = __float2bfloat16(amplitude * (2.0f * u - 1.0f));
  }
}

}  // namespace

void fill_random_bf16(void* out, int64_t count, uint64_t seed, float amplitude,
                      cudaStream_t stream) {
  if (count <= 0) return;
  const int64_t blocks = std::min<int64_t>((count + 255) / 256, 4096);
  fill_random_bf16_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
      static_cast<__nv_bfloat16*>(out), count, seed, amplitude);
  SS_CHECK_LAUNCH("fill_random_bf16");
}

}  // namespace slidesparse
