// Random operands and the output comparison, on the GPU (see random_fill.h): the one device random fill
// from a counter-based hash of (seed, index), so a fill is reproducible and needs no state.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cmath>
#include <string>

#include "cuda/check.h"
#include "cuda/resources.h"
#include "slidesparse/error.h"
#include "kernels/random_fill.h"

namespace slidesparse {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1), never exactly 0 (values well away from zero keep the data "real").
__device__ __forceinline__ float uniform_nonzero(uint64_t bits) {
  float u = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  u = 0.0625f + 0.9375f * u;                                        // [1/16, 1)
  return (bits & 1) ? -u : u;
}

__device__ __forceinline__ void store(void* data, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::kI8: {
      int q = __float2int_rn(v * 127.0f);
      q = q == 0 ? 1 : q;
      static_cast<int8_t*>(data)[i] = static_cast<int8_t>(min(max(q, -127), 127));
      break;
    }
    case DType::kFP8E4M3:
      static_cast<__nv_fp8_e4m3*>(data)[i] = __nv_fp8_e4m3(v);
      break;
    case DType::kBF16:
      static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16_rn(v);
      break;
    default:
      static_cast<float*>(data)[i] = v;
      break;
  }
}

__device__ __forceinline__ void store_zero(void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kI8:
    case DType::kFP8E4M3:
      static_cast<uint8_t*>(data)[i] = 0;
      break;
    case DType::kBF16:
      static_cast<uint16_t*>(data)[i] = 0;
      break;
    default:
      static_cast<float*>(data)[i] = 0.0f;
      break;
  }
}

__global__ void fill_kernel(void* data, DType dtype, int64_t count, uint64_t seed, float amp) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    const uint64_t bits = mix(seed ^ mix(static_cast<uint64_t>(i)));
    const float v = uniform_nonzero(bits);
    store(data, dtype, i, dtype == DType::kI8 ? v : v * amp);
  }
}

// One thread per group of 4: picks the two kept positions out of the 6 pairs.
__global__ void fill_2to4_kernel(void* data, DType dtype, int64_t groups, uint64_t seed) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups;
       g += stride) {
    const uint64_t bits = mix(seed ^ mix(static_cast<uint64_t>(g)));
    constexpr int kPairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
    const int pair = static_cast<int>((bits >> 8) % 6);
    for (int j = 0; j < 4; ++j) {
      const int64_t i = g * 4 + j;
      if (j == kPairs[pair][0] || j == kPairs[pair][1]) {
        store(data, dtype, i, uniform_nonzero(mix(bits + static_cast<uint64_t>(j))));
      } else {
        store_zero(data, dtype, i);
      }
    }
  }
}

__device__ __forceinline__ double load(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kI32:
      return static_cast<double>(static_cast<const int32_t*>(data)[i]);
    case DType::kBF16:
      return static_cast<double>(__bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]));
    default:
      return static_cast<double>(static_cast<const float*>(data)[i]);
  }
}

// sums[0] += (a-b)^2, sums[1] += b^2, sums[2] += 1 for each element of a not finite where b is.
__global__ void difference_kernel(const void* a, const void* b, DType dtype, int64_t count,
                                  double* sums) {
  double diff2 = 0, ref2 = 0, bad = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    const double va = load(a, dtype, i);
    const double vb = load(b, dtype, i);
    if (!isfinite(va) && isfinite(vb)) {
      bad += 1;
      continue;
    }
    diff2 += (va - vb) * (va - vb);
    ref2 += vb * vb;
  }
  __shared__ double shared[3][kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) {
    diff2 += __shfl_down_sync(0xffffffffu, diff2, offset);
    ref2 += __shfl_down_sync(0xffffffffu, ref2, offset);
    bad += __shfl_down_sync(0xffffffffu, bad, offset);
  }
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
    shared[0][warp] = diff2;
    shared[1][warp] = ref2;
    shared[2][warp] = bad;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double s[3] = {0, 0, 0};
    for (int w = 0; w < kThreads / 32; ++w) {
      for (int j = 0; j < 3; ++j) s[j] += shared[j][w];
    }
    for (int j = 0; j < 3; ++j) atomicAdd(&sums[j], s[j]);
  }
}

int grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? (blocks < 1 ? 1 : blocks) : 4096);
}

}  // namespace

void fill_random(void* data, DType dtype, int64_t count, uint64_t seed, cudaStream_t stream,
                 float amplitude) {
  SS_REQUIRE(dtype == DType::kI8 || dtype == DType::kFP8E4M3 || dtype == DType::kBF16 ||
                 dtype == DType::kF32,
             "fill_random: dtype " << dtype_name(dtype) << " is not supported");
  if (count <= 0) return;
  fill_kernel<<<grid_for(count), kThreads, 0, stream>>>(data, dtype, count, seed, amplitude);
  SS_CHECK_LAUNCH("fill_random");
}

void fill_random_2to4(void* data, DType dtype, int64_t rows, int64_t cols, uint64_t seed,
                      cudaStream_t stream) {
  SS_REQUIRE(cols % 4 == 0, "fill_random_2to4: cols " << cols << " is not a multiple of 4");
  SS_REQUIRE(dtype == DType::kI8 || dtype == DType::kFP8E4M3 || dtype == DType::kBF16,
             "fill_random_2to4: dtype " << dtype_name(dtype) << " is not supported");
  const int64_t groups = rows * (cols / 4);
  if (groups <= 0) return;
  fill_2to4_kernel<<<grid_for(groups), kThreads, 0, stream>>>(data, dtype, groups, seed);
  SS_CHECK_LAUNCH("fill_random_2to4");
}

double relative_difference(const void* a, const void* b, DType dtype, int64_t count,
                           cudaStream_t stream) {
  SS_REQUIRE(dtype == DType::kI32 || dtype == DType::kF32 || dtype == DType::kBF16,
             "relative_difference: dtype " << dtype_name(dtype) << " is not supported");
  if (count <= 0) return 0.0;
  DeviceBuffer sums(3 * sizeof(double));
  SS_CUDA_CHECK(cudaMemsetAsync(sums.get(), 0, 3 * sizeof(double), stream));
  difference_kernel<<<grid_for(count), kThreads, 0, stream>>>(a, b, dtype, count,
                                                              sums.as<double>());
  SS_CHECK_LAUNCH("relative_difference");
  double host[3] = {0, 0, 0};
  SS_CUDA_CHECK(cudaMemcpyAsync(host, sums.get(), sizeof(host), cudaMemcpyDeviceToHost, stream));
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (host[2] > 0) return INFINITY;
  if (host[1] == 0) return host[0] == 0 ? 0.0 : INFINITY;
  return std::sqrt(host[0] / host[1]);
}

}  // namespace slidesparse
