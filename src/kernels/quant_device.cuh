// Device-side pieces of the per-token 8-bit activation kernels, shared by quant.cu (quant,
// quant_slide, slide) and the fused producers (rms_norm.cu, silu_mul.cu): element formats,
// per-row absmax and scale, the IEEE-exact row division, code conversion, the lifting map of
// core/lift.h, and the row-kernel launch configuration. Arithmetic is core/quant.h's, bit for
// bit; a kernel that uses these functions for its codes gets launch_quant's results.
// Private to src/kernels (a .cuh: include only from .cu files).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/check.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/dtype.h"
#include "slidesparse/error.h"
#include "cuda/launch_config.h"

namespace slidesparse::quant_detail {

inline constexpr int kVecBytes = 16;
// 16-byte vectors each thread keeps in registers per pass; rows longer than
// kVecsPerThread * threads_per_row vectors are done in chunks (earlier chunks read twice).
inline constexpr int kVecsPerThread = 8;
inline constexpr int kWarpSize = 32;
inline constexpr int kMaxBlockThreads =
    512;  // 128 registers per thread: the staged row never spills
inline constexpr int kDefaultBlockThreads = 256;
inline constexpr int64_t kDefaultSmemLimit = 48 * 1024;

// ---- element formats ------------------------------------------------------------------------
struct Bf16In {
  using Bits = uint16_t;
  static constexpr int kElems = kVecBytes / 2;
  __device__ static float to_float(uint32_t bits) { return __uint_as_float(bits << 16); }
  // |x| maximum on packed pairs (max.bf16x2 is exact and, like fmaxf, ignores a NaN operand).
  struct AbsMax {
    __nv_bfloat162 acc = __floats2bfloat162_rn(0.0f, 0.0f);
    __device__ void update(uint32_t word) {
      acc = __hmax2(acc, __habs2(*reinterpret_cast<const __nv_bfloat162*>(&word)));
    }
    __device__ float value() const { return fmaxf(__low2float(acc), __high2float(acc)); }
  };
};
struct F16In {
  using Bits = uint16_t;
  static constexpr int kElems = kVecBytes / 2;
  __device__ static float to_float(uint32_t bits) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
  }
  struct AbsMax {
    __half2 acc = __floats2half2_rn(0.0f, 0.0f);
    __device__ void update(uint32_t word) {
      acc = __hmax2(acc, __habs2(*reinterpret_cast<const __half2*>(&word)));
    }
    __device__ float value() const { return fmaxf(__low2float(acc), __high2float(acc)); }
  };
};
struct F32In {
  using Bits = uint32_t;
  static constexpr int kElems = kVecBytes / 4;
  __device__ static float to_float(uint32_t bits) { return __uint_as_float(bits); }
  struct AbsMax {
    float acc = 0.0f;
    __device__ void update(uint32_t word) { acc = fmaxf(acc, fabsf(__uint_as_float(word))); }
    __device__ float value() const { return acc; }
  };
};

// v / scale for one row, bit-equal to __fdiv_rn wherever it can change a code, at 3 FP
// instructions instead of ~10: inv = RN(1/scale), q0 = RN(v*inv), r = v - q0*scale (exact with
// an FMA), q = RN(q0 + r*inv) is the correctly rounded quotient (Markstein's theorem) unless
// it is below 2^-126 (such quotients quantise to 0 either way). The sign of a zero quotient is
// taken from v. An infinite scale (an inf in the row) uses scale 0 in the FMA, which yields
// IEEE's finite/inf = 0 and inf/inf = NaN.
struct RowDivider {
  float scale_fma;
  float inv;
  __device__ static RowDivider for_scale(float scale) {
    return RowDivider{isinf(scale) ? 0.0f : scale, __frcp_rn(scale)};
  }
  __device__ float operator()(float v) const {
    const float q0 = __fmul_rn(v, inv);
    const float r = __fmaf_rn(-q0, scale_fma, v);
    const float q = __fmaf_rn(r, inv, q0);
    return __uint_as_float(__float_as_uint(q) | (__float_as_uint(v) & 0x80000000u));
  }
};

struct I8Out {
  static constexpr float kQmax = 127.0f;
  // Four codes packed little-endian. __float2int_rn rounds half to even and maps NaN to 0, as
  // quantize_int8 does; no clamp is needed because |v| <= absmax makes |q| <= 127 * (1 + 2^-23),
  // which rounds into [-127, 127].
  __device__ static uint32_t pack4(float q0, float q1, float q2, float q3) {
    const int a = __float2int_rn(q0), b = __float2int_rn(q1);
    const int c = __float2int_rn(q2), d = __float2int_rn(q3);
    return __byte_perm(__byte_perm(a, b, 0x0040), __byte_perm(c, d, 0x0040), 0x5410);
  }
};
struct E4M3Out {
  static constexpr float kQmax = kE4M3Max;
  // cvt.rn.satfinite.e4m3x2: round to nearest even, saturate at +-448, NaN -> 0x7F.
  __device__ static uint32_t pack4(float q0, float q1, float q2, float q3) {
    const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(q0, q1), __NV_SATFINITE, __NV_E4M3);
    const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(q2, q3), __NV_SATFINITE, __NV_E4M3);
    return __byte_perm(lo, hi, 0x5410);
  }
};
// Placeholder output format of the slide op (it copies raw bits, no code()).
struct RawOut {};

// The per-token scale of a row: max(absmax, kMinAbsMax) / qmax with IEEE division.
template <class Out>
__device__ __forceinline__ float row_scale(float row_absmax) {
  return __fdiv_rn(fmaxf(row_absmax, kMinAbsMax), Out::kQmax);
}

// ---- 16-byte vector helpers (indices are compile-time constants after unrolling) ------------
__device__ __forceinline__ uint32_t get_word(const uint4& v, int j) {
  return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}
__device__ __forceinline__ void or_word(uint4& v, int j, uint32_t w) {
  if (j == 0)
    v.x |= w;
  else if (j == 1)
    v.y |= w;
  else if (j == 2)
    v.z |= w;
  else
    v.w |= w;
}

template <class In>
__device__ __forceinline__ uint32_t elem_bits(const uint4& v, int i) {
  if constexpr (sizeof(typename In::Bits) == 4) {
    return get_word(v, i);
  } else {
    const uint32_t w = get_word(v, i / 2);
    return (i & 1) ? (w >> 16) : (w & 0xFFFFu);
  }
}

// Vector `idx` of a row (elements idx*kElems ...), zeros past k. 16-byte load when the row is
// aligned and the vector lies inside k; element loads otherwise (row tail, odd strides).
template <class In>
__device__ __forceinline__ uint4 load_vec(const typename In::Bits* row, int64_t idx, int64_t k,
                                          bool vec_ok) {
  const int64_t col0 = idx * In::kElems;
  if (vec_ok && col0 + In::kElems <= k) return __ldg(reinterpret_cast<const uint4*>(row + col0));
  uint4 v = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (int e = 0; e < In::kElems; ++e) {
    const int64_t col = col0 + e;
    const uint32_t bits = col < k ? static_cast<uint32_t>(row[col]) : 0u;
    if constexpr (sizeof(typename In::Bits) == 4) {
      or_word(v, e, bits);
    } else {
      or_word(v, e / 2, bits << (16 * (e & 1)));
    }
  }
  return v;
}

// |x| maximum of the four words of a vector.
template <class In>
__device__ __forceinline__ void absmax_update(typename In::AbsMax& acc, const uint4& v) {
  acc.update(v.x);
  acc.update(v.y);
  acc.update(v.z);
  acc.update(v.w);
}

// Codes of one input vector, packed little-endian: kElems bytes in kElems/4 words.
template <class In, class Out>
struct CodeVec {
  static constexpr int kWords = In::kElems / 4;
  uint32_t w[kWords];
};

template <class In, class Out>
__device__ __forceinline__ CodeVec<In, Out> quantize_vec(const uint4& v, const RowDivider& div) {
  CodeVec<In, Out> c;
#pragma unroll
  for (int e = 0; e < In::kElems; e += 4) {
    c.w[e / 4] = Out::pack4(
        div(In::to_float(elem_bits<In>(v, e))), div(In::to_float(elem_bits<In>(v, e + 1))),
        div(In::to_float(elem_bits<In>(v, e + 2))), div(In::to_float(elem_bits<In>(v, e + 3))));
  }
  return c;
}

// Stores the kElems code bytes at `dst` (aligned to kElems bytes) with one store.
template <class In, class Out>
__device__ __forceinline__ void store_codes(uint8_t* dst, const CodeVec<In, Out>& c) {
  if constexpr (CodeVec<In, Out>::kWords == 2) {
    *reinterpret_cast<uint2*>(dst) = make_uint2(c.w[0], c.w[1]);
  } else {
    *reinterpret_cast<uint32_t*>(dst) = c.w[0];
  }
}

// Byte-wise store of the first min(limit, 16) bytes of v (unaligned or partial vectors).
__device__ __forceinline__ void store_bytes_bounded(uint8_t* dst, const uint4& v, int64_t limit) {
#pragma unroll
  for (int b = 0; b < kVecBytes; ++b)
    if (b < limit) dst[b] = static_cast<uint8_t>(get_word(v, b / 4) >> (8 * (b & 3)));
}

__device__ __forceinline__ int64_t ceil_div_dev(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Barrier over the threads of one row only (a warp, or the row's warps through named barrier
// 1 + local_row), so each row of a block goes from its loads to its stores without waiting
// for the block's slowest row; falls back to the block barrier past 15 rows per block.
__device__ __forceinline__ void row_barrier(int local_row, int tpr, int rows_per_block) {
  if (rows_per_block > 15) {
    __syncthreads();
  } else if (tpr == kWarpSize) {
    __syncwarp();
  } else {
    asm volatile("bar.sync %0, %1;" ::"r"(1 + local_row), "r"(tpr) : "memory");
  }
}

// Row absmax from each thread's partial: warp shuffle, then the row's warps through
// warp_absmax (one float per warp of the block). Contains one row barrier; every thread of the
// block must call it.
__device__ __forceinline__ float row_absmax_reduce(float absmax, float* warp_absmax, int local_row,
                                                   int tpr, int rows_per_block) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    absmax = fmaxf(absmax, __shfl_xor_sync(0xFFFFFFFFu, absmax, offset));
  if ((threadIdx.x & (kWarpSize - 1)) == 0) warp_absmax[threadIdx.x / kWarpSize] = absmax;
  row_barrier(local_row, tpr, rows_per_block);
  const int warps_per_row = tpr / kWarpSize;
  float row_absmax = 0.0f;
  for (int w = 0; w < warps_per_row; ++w)
    row_absmax = fmaxf(row_absmax, warp_absmax[local_row * warps_per_row + w]);
  return row_absmax;
}

// ---- output rows from a staged row (shared memory) -------------------------------------------
// Plain quant: copies the staged codes (stage_elems bytes, zero past the row) to out_row with
// 16-byte stores (byte stores when out_vec_ok is false); columns past the staged row are zero.
__device__ __forceinline__ void store_staged_codes(const uint8_t* stage_row, int64_t stage_elems,
                                                   uint8_t* out_row, int64_t k_out, bool out_vec_ok,
                                                   int t, int tpr) {
  const int64_t out_vecs = ceil_div_dev(k_out, kVecBytes);
  for (int64_t j = t; j < out_vecs; j += tpr) {
    const int64_t col0 = j * kVecBytes;
    const uint4 codes = col0 < stage_elems ? *reinterpret_cast<const uint4*>(stage_row + col0)
                                           : make_uint4(0, 0, 0, 0);
    if (out_vec_ok) {
      *reinterpret_cast<uint4*>(out_row + col0) = codes;
    } else {
      store_bytes_bounded(out_row + col0, codes, k_out - col0);
    }
  }
}

// Lifting with a run-time L (core/lift.h's map): out unit U (2 elements) of block g, position
// u, holds source pair g*N + (u+1)/2; window w covers units 2w, 2w+1 = pairs w, w+1 of the
// block. Unit = uint16_t for 8-bit codes, uint32_t for 16-bit elements. row_bytes = K' times the
// element size (a multiple of 16); units at or past lift_units are zero.
template <class Unit>
__device__ __forceinline__ void lift_staged_row(const uint8_t* stage_row, uint8_t* out_row,
                                                int64_t row_bytes, int block_len,
                                                uint32_t lift_units, bool out_vec_ok, int t,
                                                int tpr) {
  constexpr int kUnitsPerVec = kVecBytes / static_cast<int>(sizeof(Unit));
  const Unit* units = reinterpret_cast<const Unit*>(stage_row);
  const uint32_t units_per_block = static_cast<uint32_t>(block_len - 2);
  const uint32_t pairs_per_block = static_cast<uint32_t>(block_len / 2);
  const int64_t out_vecs = row_bytes / kVecBytes;
  for (int64_t j = t; j < out_vecs; j += tpr) {
    const uint32_t u0 = static_cast<uint32_t>(j) * kUnitsPerVec;
    uint32_t g = u0 / units_per_block;
    uint32_t u = u0 - g * units_per_block;
    uint32_t words[4] = {0, 0, 0, 0};
#pragma unroll
    for (int i = 0; i < kUnitsPerVec; ++i) {
      const uint32_t value =
          (u0 + i < lift_units) ? static_cast<uint32_t>(units[g * pairs_per_block + ((u + 1) >> 1)])
                                : 0u;
      if constexpr (sizeof(Unit) == 2) {
        words[i / 2] |= value << (16 * (i & 1));
      } else {
        words[i] = value;
      }
      if (++u == units_per_block) {
        u = 0;
        ++g;
      }
    }
    uint8_t* dst = out_row + j * kVecBytes;
    const uint4 packed = make_uint4(words[0], words[1], words[2], words[3]);
    if (out_vec_ok) {
      *reinterpret_cast<uint4*>(dst) = packed;
    } else {
      store_bytes_bounded(dst, packed, kVecBytes);
    }
  }
}

// Lifting of 8-bit codes with L known at compile time (the same map as lift_staged_row). A
// thread owns a "super-block" of kBlocks blocks whose input (kBlocks*L bytes) and output
// (kBlocks*S bytes, S = 2L-4) both start on 16 bytes: it reads the input with 16-byte shared
// loads and builds every output word with at most one byte permute (window w of a block is the
// 4 bytes at offset 2w), then writes 16-byte stores. The staged row must be zero from the end
// of the codes up to super_blocks(k_out) * input_bytes.
template <int kL>
struct FixedLift {
  static_assert(kL >= 4 && kL <= 16 && kL % 2 == 0, "2:L with even L in [4, 16]");
  static constexpr int kWindows = kL / 2 - 1;  // N-1 windows (4 bytes each) per block
  static constexpr int kSlots = 4 * kWindows;  // S output bytes per block
  static constexpr int kBlocks = kL == 4 ? 4 : (kL == 8 || kL == 12 || kL == 16) ? 4 : 8;
  static constexpr int kInBytes = kBlocks * kL;       // multiple of 16
  static constexpr int kOutBytes = kBlocks * kSlots;  // multiple of 16
  static_assert(kInBytes % kVecBytes == 0 && kOutBytes % kVecBytes == 0, "16-byte super-blocks");
  static constexpr int kInWords = kInBytes / 4;
  static constexpr int kOutVecs = kOutBytes / kVecBytes;

  // Super-blocks that cover an output row of k_out bytes.
  __host__ __device__ static int64_t super_blocks(int64_t k_out) {
    return (k_out + kOutBytes - 1) / kOutBytes;
  }

  // Output word o of a super-block from its input words (o, in compile-time after unrolling).
  __device__ static __forceinline__ uint32_t out_word(const uint32_t (&in)[kInWords], int o) {
    const int block = o / kWindows;
    const int window = o - block * kWindows;
    const int byte = block * kL + 2 * window;
    const int word = byte / 4;
    if (byte % 4 == 0) return in[word];
    return __byte_perm(in[word], in[word + 1], 0x5432);
  }

  __device__ static void store_row(const uint8_t* stage_row, uint8_t* out_row, int64_t k_out,
                                   bool out_vec_ok, int t, int tpr) {
    const int64_t n_super = super_blocks(k_out);
    for (int64_t sb = t; sb < n_super; sb += tpr) {
      uint32_t in[kInWords];
      const uint4* src = reinterpret_cast<const uint4*>(stage_row + sb * kInBytes);
#pragma unroll
      for (int v = 0; v < kInWords / 4; ++v) {
        const uint4 q = src[v];
        in[4 * v] = q.x;
        in[4 * v + 1] = q.y;
        in[4 * v + 2] = q.z;
        in[4 * v + 3] = q.w;
      }
      uint8_t* dst = out_row + sb * kOutBytes;
      const int64_t room = k_out - sb * kOutBytes;  // > 0
#pragma unroll
      for (int v = 0; v < kOutVecs; ++v) {
        if (v * kVecBytes >= room) break;
        const uint4 packed = make_uint4(out_word(in, 4 * v), out_word(in, 4 * v + 1),
                                        out_word(in, 4 * v + 2), out_word(in, 4 * v + 3));
        if (out_vec_ok) {
          *reinterpret_cast<uint4*>(dst + v * kVecBytes) = packed;
        } else {
          store_bytes_bounded(dst + v * kVecBytes, packed, kVecBytes);
        }
      }
    }
  }
};

// Calls f(std::integral_constant<int, L>{}) for the run-time L in {4, 6, ..., 16}.
template <class F>
decltype(auto) dispatch_block_len(int block_len, F&& f) {
  switch (block_len) {
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 8:
      return f(std::integral_constant<int, 8>{});
    case 10:
      return f(std::integral_constant<int, 10>{});
    case 12:
      return f(std::integral_constant<int, 12>{});
    case 14:
      return f(std::integral_constant<int, 14>{});
    case 16:
      return f(std::integral_constant<int, 16>{});
    default:
      throw NotSupportedError("pattern 2:" + std::to_string(block_len) +
                              " is not supported; L from 4 to 16");
  }
}

// ---- host side ------------------------------------------------------------------------------
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

inline bool aligned(const void* p, int64_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) == 0;
}

// The launch configuration of a row kernel for rows of n_vec 16-byte vectors: zeros resolved
// to the defaults (threads_per_row = n_vec / kVecsPerThread rounded up to a warp, at most
// kMaxBlockThreads; about kDefaultBlockThreads threads per block); throws Error when invalid.
inline KernelLaunchConfig resolve_row_config(const char* op, int64_t n_vec,
                                             KernelLaunchConfig config) {
  SS_REQUIRE(config.block_threads >= 0 && config.rows_per_block >= 0,
             op << ": launch config must not be negative (block_threads " << config.block_threads
                << ", rows_per_block " << config.rows_per_block << ")");
  const int64_t default_tpr = std::clamp<int64_t>(
      round_up(ceil_div(n_vec, kVecsPerThread), kWarpSize), kWarpSize, kMaxBlockThreads);
  KernelLaunchConfig r;
  if (config.block_threads == 0) {
    const int64_t rows = config.rows_per_block != 0
                             ? config.rows_per_block
                             : std::max<int64_t>(1, kDefaultBlockThreads / default_tpr);
    SS_REQUIRE(default_tpr * rows <= kMaxBlockThreads,
               op << ": rows_per_block " << rows << " needs " << default_tpr * rows
                  << " threads per block at this K (at most " << kMaxBlockThreads << ")");
    r.block_threads = static_cast<int>(default_tpr * rows);
    r.rows_per_block = static_cast<int>(rows);
  } else {
    r.block_threads = config.block_threads;
    r.rows_per_block = config.rows_per_block != 0 ? config.rows_per_block : 1;
  }
  SS_REQUIRE(r.block_threads % kWarpSize == 0 && r.block_threads <= kMaxBlockThreads,
             op << ": block_threads " << r.block_threads << " must be a multiple of " << kWarpSize
                << " and at most " << kMaxBlockThreads);
  SS_REQUIRE(r.block_threads % r.rows_per_block == 0 &&
                 (r.block_threads / r.rows_per_block) % kWarpSize == 0,
             op << ": block_threads " << r.block_threads << " / rows_per_block " << r.rows_per_block
                << " must give a whole number of warps per row");
  return r;
}

inline int64_t max_dynamic_smem() {
  int device = 0;
  SS_CUDA_CHECK(cudaGetDevice(&device));
  int bytes = 0;
  SS_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return bytes;
}

// Raises the kernel's dynamic shared memory limit when smem_bytes needs it; NotSupportedError
// naming the op and K when the GPU cannot give that much.
template <class Kernel>
void allow_dynamic_smem(const char* op, Kernel kernel, int64_t smem_bytes, int64_t k,
                        int rows_per_block) {
  if (smem_bytes <= kDefaultSmemLimit) return;
  const int64_t limit = max_dynamic_smem();
  SS_REQUIRE_T(NotSupportedError, smem_bytes <= limit,
               op << ": K = " << k << " needs " << smem_bytes
                  << " bytes of shared memory per block (rows_per_block " << rows_per_block
                  << "); this GPU allows " << limit);
  SS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(smem_bytes)));
}

inline void require_out_dtype(const char* op, DType out_dtype) {
  SS_REQUIRE_T(
      NotSupportedError, out_dtype == DType::kI8 || out_dtype == DType::kFP8E4M3,
      op << ": output dtype '" << dtype_name(out_dtype) << "' is not supported (int8, fp8)");
}

}  // namespace slidesparse::quant_detail
