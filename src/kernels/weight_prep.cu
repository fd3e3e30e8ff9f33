// GPU weight preparation (weight_prep.h): pruning, per-channel quantisation and sliding, each
// spelled as its core/ reference so the results are bit-equal. One thread per block of L for
// pruning and sliding (weights are prepared once, at load time: simple beats fast here), one
// thread block per row for quantisation (absmax reduction, then IEEE divisions as quant.h).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/weight_prep.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

constexpr int kThreads = 256;
constexpr unsigned long long kNoViolation = ULLONG_MAX;

// ---- element formats: raw bits in, float value out (exact for every format) -----------------
struct F32Elem {
  using Bits = uint32_t;
  __device__ static float value(Bits b) { return __uint_as_float(b); }
};
struct Bf16Elem {
  using Bits = uint16_t;
  __device__ static float value(Bits b) { return __uint_as_float(static_cast<uint32_t>(b) << 16); }
};
struct I8Elem {
  using Bits = uint8_t;
  __device__ static float value(Bits b) { return static_cast<float>(static_cast<int8_t>(b)); }
};
struct E4M3Elem {
  using Bits = uint8_t;
  __device__ static float value(Bits b) {
    __nv_fp8_e4m3 v;
    v.__x = b;
    return static_cast<float>(v);  // 0x7F / 0xFF decode to NaN
  }
};

// "Is zero" as core's is_zero: +0 and -0 are zeros, NaN is not.
template <class E>
__device__ bool elem_is_zero(typename E::Bits b) {
  return E::value(b) == 0.0f;
}

// |v| for ordering; NaN as the largest (core/prune.cpp magnitude()).
template <class E>
__device__ float magnitude(typename E::Bits b) {
  const float f = fabsf(E::value(b));
  return isnan(f) ? INFINITY : f;
}

// ---- pruning ----------------------------------------------------------------------------------
// Zeroing the `to_zero` (<= 2) smallest by a stable sort is zeroing the first minimum (lowest
// column among equals), then the first minimum of the rest.
template <class E>
__global__ void prune_kernel(typename E::Bits* w, int64_t rows, int64_t cols, int block,
                             int zeros) {
  using Bits = typename E::Bits;
  const int64_t blocks_per_row = (cols + block - 1) / block;
  const int64_t total = rows * blocks_per_row;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / blocks_per_row;
    const int64_t c0 = (t % blocks_per_row) * block;
    const int64_t c1 = min(c0 + block, cols);
    const int64_t padding = block - (c1 - c0);
    const int64_t to_zero = max(int64_t{0}, zeros - padding);
    Bits* row = w + r * cols;
    int64_t chosen = -1;
    for (int64_t i = 0; i < to_zero; ++i) {
      int64_t best = -1;
      float best_mag = 0.0f;
      for (int64_t c = c0; c < c1; ++c) {
        if (c == chosen) continue;
        const float m = magnitude<E>(row[c]);
        if (best < 0 || m < best_mag) {
          best = c;
          best_mag = m;
        }
      }
      chosen = best;
      row[best] = Bits{0};
    }
  }
}

// ---- per-row quantisation ---------------------------------------------------------------------
template <class E>
__device__ float block_absmax(const typename E::Bits* row, int64_t cols) {
  __shared__ float partial[kThreads / 32];
  float a = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) a = fmaxf(a, fabsf(E::value(row[c])));
  for (int offset = 16; offset > 0; offset /= 2)
    a = fmaxf(a, __shfl_xor_sync(0xFFFFFFFFu, a, offset));
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = a;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < static_cast<int>(blockDim.x / 32); ++i) total = fmaxf(total, partial[i]);
  return total;  // max is exact and order-free: equal to the CPU's left-to-right fmax
}

template <class E, bool kInt8>
__global__ void __launch_bounds__(kThreads)
    quantize_rows_kernel(const typename E::Bits* w, int64_t cols, uint8_t* codes, float* scales) {
  const int64_t r = blockIdx.x;
  const typename E::Bits* row = w + r * cols;
  const float absmax = block_absmax<E>(row, cols);
  const float qmax = kInt8 ? 127.0f : kE4M3Max;
  const float scale = __fdiv_rn(fmaxf(absmax, kMinAbsMax), qmax);
  if (threadIdx.x == 0) scales[r] = scale;
  uint8_t* out = codes + r * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float q = __fdiv_rn(E::value(row[c]), scale);
    if constexpr (kInt8) {
      // __float2int_rn: round half to even, NaN -> 0; then the clamp of quantize_int8.
      const int i = min(max(__float2int_rn(q), -128), 127);
      out[c] = static_cast<uint8_t>(static_cast<int8_t>(i));
    } else {
      out[c] = __nv_cvt_float_to_fp8(q, __NV_SATFINITE, __NV_E4M3);
    }
  }
}

// ---- sliding ----------------------------------------------------------------------------------
// Thread t of a row owns slot group t: slots [t*S, (t+1)*S) of W'. Groups below the block count
// hold block t's windows; the rest are the zero tail up to K'.
template <class E>
__global__ void slide_kernel(const typename E::Bits* w, int64_t rows, int64_t k, int block,
                             int64_t blocks_per_row, int64_t k_slide, typename E::Bits* out,
                             unsigned long long* violation) {
  using Bits = typename E::Bits;
  const int slots = 4 * (block / 2 - 1);
  const int windows = block / 2 - 1;
  const int max_nonzeros = block - 2;
  const int64_t groups = (k_slide + slots - 1) / slots;
  const int64_t total = rows * groups;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / groups;
    const int64_t g = t % groups;
    Bits* dst = out + r * k_slide;
    const int64_t s0 = g * slots;
    const int64_t s1 = min(s0 + slots, k_slide);
    for (int64_t s = s0; s < s1; ++s) dst[s] = Bits{0};
    if (g >= blocks_per_row) continue;
    const Bits* row = w + r * k;
    const int64_t c0 = g * block;
    const int64_t c1 = min(c0 + block, k);
    int nonzeros = 0;
    for (int64_t c = c0; c < c1; ++c) nonzeros += elem_is_zero<E>(row[c]) ? 0 : 1;
    if (nonzeros > max_nonzeros) {
      atomicMin(violation, static_cast<unsigned long long>(r * blocks_per_row + g));
      continue;
    }
    // Greedy, left to right: window `win` covers positions [2 win, 2 win + 4) and takes at most
    // two of the not yet placed non-zeros (core/slide.cpp).
    int win = 0, taken = 0;
    for (int64_t c = c0; c < c1; ++c) {
      if (elem_is_zero<E>(row[c])) continue;
      const int p = static_cast<int>(c - c0);
      while (win < windows && (taken == 2 || p >= 2 * win + 4)) {
        ++win;
        taken = 0;
      }
      if (win >= windows || p < 2 * win) {  // cannot happen with <= L-2 non-zeros
        atomicMin(violation, static_cast<unsigned long long>(r * blocks_per_row + g));
        break;
      }
      dst[s0 + 4 * win + (p - 2 * win)] = row[c];
      ++taken;
    }
  }
}

int grid_for(int64_t threads) {
  return static_cast<int>(std::clamp<int64_t>((threads + kThreads - 1) / kThreads, 1, 65535 * 8));
}

void require_weight_dtype(const char* op, DType dtype) {
  SS_REQUIRE_T(NotSupportedError,
               dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kI8 ||
                   dtype == DType::kFP8E4M3,
               op << ": weight dtype " << dtype_name(dtype)
                  << " is not supported (f32, bf16, int8, fp8_e4m3)");
}

// Calls f(tag) with the element format of `dtype`.
template <class F>
void dispatch_elem(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF32:
      f(F32Elem{});
      break;
    case DType::kBF16:
      f(Bf16Elem{});
      break;
    case DType::kI8:
      f(I8Elem{});
      break;
    default:
      f(E4M3Elem{});
      break;
  }
}

// Non-zeros of the `block`-th block of row `row` of W in device memory (for the error message).
int count_block_nonzeros(const void* w, DType dtype, int64_t k, int64_t row, int64_t block_index,
                         int block) {
  const int64_t c0 = block_index * block;
  const int64_t c1 = std::min<int64_t>(c0 + block, k);
  const int64_t elem = dtype_size(dtype);
  std::vector<uint8_t> bytes(static_cast<size_t>((c1 - c0) * elem));
  SS_CUDA_CHECK(cudaMemcpy(bytes.data(), static_cast<const uint8_t*>(w) + (row * k + c0) * elem,
                           bytes.size(), cudaMemcpyDeviceToHost));
  int nonzeros = 0;
  for (int64_t i = 0; i < c1 - c0; ++i) {
    const uint8_t* e = bytes.data() + i * elem;
    bool zero = false;
    switch (dtype) {
      case DType::kF32: {
        float f;
        std::memcpy(&f, e, 4);
        zero = f == 0.0f;
        break;
      }
      case DType::kBF16: {
        bf16_t b;
        std::memcpy(&b.bits, e, 2);
        zero = is_zero(b);
        break;
      }
      case DType::kI8:
        zero = e[0] == 0;
        break;
      default:
        zero = is_zero(fp8_e4m3_t{e[0]});
        break;
    }
    nonzeros += zero ? 0 : 1;
  }
  return nonzeros;
}

}  // namespace

void launch_prune_magnitude(void* w, DType dtype, int64_t rows, int64_t cols, Sparsity sparsity,
                            cudaStream_t stream) {
  const char* op = "prune_magnitude";
  require_weight_dtype(op, dtype);
  SS_REQUIRE(rows >= 1 && cols >= 1, op << ": empty weight [" << rows << ", " << cols << "]");
  SS_REQUIRE(w != nullptr, op << ": weight is null");
  const int64_t threads = rows * ((cols + sparsity.block() - 1) / sparsity.block());
  dispatch_elem(dtype, [&](auto tag) {
    using E = decltype(tag);
    prune_kernel<E><<<grid_for(threads), kThreads, 0, stream>>>(
        static_cast<typename E::Bits*>(w), rows, cols, sparsity.block(), sparsity.zeros());
  });
  SS_CHECK_LAUNCH(op);
}

void launch_quantize_rows(const void* w, DType w_dtype, int64_t rows, int64_t cols, DType out_dtype,
                          void* codes, float* scales, cudaStream_t stream) {
  const char* op = "quantize_rows";
  SS_REQUIRE_T(NotSupportedError, w_dtype == DType::kF32 || w_dtype == DType::kBF16,
               op << ": input dtype " << dtype_name(w_dtype) << " is not supported (f32, bf16)");
  SS_REQUIRE_T(
      NotSupportedError, out_dtype == DType::kI8 || out_dtype == DType::kFP8E4M3,
      op << ": output dtype " << dtype_name(out_dtype) << " is not supported (int8, fp8_e4m3)");
  SS_REQUIRE(rows >= 1 && cols >= 1, op << ": empty weight [" << rows << ", " << cols << "]");
  SS_REQUIRE(rows <= INT32_MAX, op << ": " << rows << " rows is too many (one block per row)");
  SS_REQUIRE(w != nullptr && codes != nullptr && scales != nullptr,
             op << ": null weight, codes or scales");
  auto* out = static_cast<uint8_t*>(codes);
  const dim3 grid(static_cast<unsigned>(rows));
  if (w_dtype == DType::kF32) {
    const auto* in = static_cast<const uint32_t*>(w);
    if (out_dtype == DType::kI8)
      quantize_rows_kernel<F32Elem, true><<<grid, kThreads, 0, stream>>>(in, cols, out, scales);
    else
      quantize_rows_kernel<F32Elem, false><<<grid, kThreads, 0, stream>>>(in, cols, out, scales);
  } else {
    const auto* in = static_cast<const uint16_t*>(w);
    if (out_dtype == DType::kI8)
      quantize_rows_kernel<Bf16Elem, true><<<grid, kThreads, 0, stream>>>(in, cols, out, scales);
    else
      quantize_rows_kernel<Bf16Elem, false><<<grid, kThreads, 0, stream>>>(in, cols, out, scales);
  }
  SS_CHECK_LAUNCH(op);
}

void launch_slide_weights(const void* w, DType dtype, int64_t rows, int64_t k, Sparsity sparsity,
                          void* w_slid, unsigned long long* violation, cudaStream_t stream) {
  const char* op = "slide_weights";
  require_weight_dtype(op, dtype);
  SS_REQUIRE(rows >= 1 && k >= 1, op << ": empty weight [" << rows << ", " << k << "]");
  SS_REQUIRE(w != nullptr && w_slid != nullptr && violation != nullptr,
             op << ": null weight, output or violation flag");
  const int64_t k_slide = sparsity.k_slide(k);
  const int64_t blocks_per_row = sparsity.k_pad(k) / sparsity.block();
  const int64_t groups = (k_slide + sparsity.slots_per_block() - 1) / sparsity.slots_per_block();
  dispatch_elem(dtype, [&](auto tag) {
    using E = decltype(tag);
    using Bits = typename E::Bits;
    slide_kernel<E><<<grid_for(rows * groups), kThreads, 0, stream>>>(
        static_cast<const Bits*>(w), rows, k, sparsity.block(), blocks_per_row, k_slide,
        static_cast<Bits*>(w_slid), violation);
  });
  SS_CHECK_LAUNCH(op);
}

void slide_weights_on_gpu(const void* w, DType dtype, int64_t rows, int64_t k, Sparsity sparsity,
                          void* w_slid, cudaStream_t stream, const std::string& what) {
  DeviceBuffer flag(sizeof(unsigned long long));
  SS_CUDA_CHECK(cudaMemsetAsync(flag.get(), 0xFF, sizeof(unsigned long long), stream));
  launch_slide_weights(w, dtype, rows, k, sparsity, w_slid, flag.as<unsigned long long>(), stream);
  unsigned long long first = kNoViolation;
  SS_CUDA_CHECK(cudaMemcpyAsync(&first, flag.get(), sizeof(first), cudaMemcpyDeviceToHost, stream));
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (first == kNoViolation) return;
  const int64_t blocks_per_row = sparsity.k_pad(k) / sparsity.block();
  const int64_t row = static_cast<int64_t>(first / static_cast<unsigned long long>(blocks_per_row));
  const int64_t block =
      static_cast<int64_t>(first % static_cast<unsigned long long>(blocks_per_row));
  const int64_t c0 = block * sparsity.block();
  const int64_t c1 = std::min<int64_t>(c0 + sparsity.block(), k);
  const int nonzeros = count_block_nonzeros(w, dtype, k, row, block, sparsity.block());
  throw PatternError(
      what + ": weight breaks " + sparsity.name() + " (" + sparsity.density_name() +
          " density): row " + std::to_string(row) + ", block " + std::to_string(block) + " (cols " +
          std::to_string(c0) + ".." + std::to_string(c1 - 1) + "): " + std::to_string(nonzeros) +
          " non-zeros, at most " + std::to_string(sparsity.max_nonzeros_per_block()) + " allowed",
      row, block);
}

}  // namespace slidesparse
