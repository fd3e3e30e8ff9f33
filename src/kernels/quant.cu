// Per-token activation kernels: quant (x -> int8/fp8 codes + scale per row), quant_slide (the
// same, lifted to K' in the sliding-window layout) and slide (bf16/fp16 lifting only). A group of
// threads_per_row threads owns one row and stages it in registers (16-byte loads), so x is read
// from DRAM once: absmax, reduction over the row's threads, then quantise and store (through shared
// memory when lifting). Arithmetic follows core/quant.h exactly: __fdiv_rn, round half to even,
// saturation.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "cuda/check.h"
#include "kernels/quant.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

constexpr int kVecBytes = 16;
// 16-byte vectors each thread keeps in registers per pass; rows longer than
// kVecsPerThread * threads_per_row vectors are done in chunks (earlier chunks read twice).
constexpr int kVecsPerThread = 8;
constexpr int kWarpSize = 32;
constexpr int kMaxBlockThreads = 512;  // 128 registers per thread: the staged row never spills
constexpr int kDefaultBlockThreads = 256;
constexpr int64_t kDefaultSmemLimit = 48 * 1024;

enum class RowOp { kQuant, kQuantSlide, kSlide };

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

// ---- the row kernel -------------------------------------------------------------------------
struct RowParams {
  const void* x;
  int64_t m;
  int64_t k;
  int64_t ld_x;
  void* out;
  int64_t m_pad;
  int64_t k_out;  // output row length in elements (K for quant, K' when lifting)
  float* scale_per_token;
  int threads_per_row;
  int rows_per_block;
  int64_t n_vec;  // 16-byte input vectors per row: ceil(k / kElems)
  int chunks;     // ceil(n_vec / (kVecsPerThread * threads_per_row))
  bool x_vec_ok;
  bool out_vec_ok;
  // lifting only
  int block_len;        // L
  uint32_t lift_units;  // 2-element units of K' that hold data: k_slide_unaligned / 2
  int64_t stage_elems;  // staged row length in shared memory (elements), multiple of 16
};

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

// (512, 2): at most 64 registers per thread, so 1024 threads per SM keep rows in flight.
template <class In, class Out, RowOp kOp>
__global__ void __launch_bounds__(kMaxBlockThreads, 2) quant_rows_kernel(const RowParams p) {
  using Bits = typename In::Bits;
  constexpr int kElems = In::kElems;
  extern __shared__ __align__(16) unsigned char stage_smem[];
  __shared__ float warp_absmax[kMaxBlockThreads / kWarpSize];

  const int tpr = p.threads_per_row;
  const int local_row = static_cast<int>(threadIdx.x) / tpr;
  const int t = static_cast<int>(threadIdx.x) - local_row * tpr;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * p.rows_per_block + local_row;
  const bool row_in_out = row < p.m_pad;
  const bool row_has_x = row < p.m;
  const Bits* x_row = static_cast<const Bits*>(p.x) + (row_has_x ? row * p.ld_x : 0);
  const int64_t chunk_vecs = static_cast<int64_t>(kVecsPerThread) * tpr;

  uint4 v[kVecsPerThread];
  auto load_chunk = [&](int c) {
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) {
      const int64_t idx = c * chunk_vecs + static_cast<int64_t>(i) * tpr + t;
      v[i] = (row_has_x && idx < p.n_vec) ? load_vec<In>(x_row, idx, p.k, p.x_vec_ok)
                                          : make_uint4(0, 0, 0, 0);
    }
  };

  // The row's codes (raw elements for slide) are staged in shared memory so that the stores
  // are whole 16-byte vectors of the output layout (lifted or not).
  constexpr int kStageBytes = kOp == RowOp::kSlide ? 2 : 1;
  uint8_t* stage_row = stage_smem + static_cast<int64_t>(local_row) * p.stage_elems * kStageBytes;

  if constexpr (kOp != RowOp::kSlide) {
    typename In::AbsMax thread_absmax;
    for (int c = 0; c < p.chunks; ++c) {
      load_chunk(c);
#pragma unroll
      for (int i = 0; i < kVecsPerThread; ++i) {
        thread_absmax.update(v[i].x);
        thread_absmax.update(v[i].y);
        thread_absmax.update(v[i].z);
        thread_absmax.update(v[i].w);
      }
    }
    float absmax = thread_absmax.value();
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
      absmax = fmaxf(absmax, __shfl_xor_sync(0xFFFFFFFFu, absmax, offset));
    if ((threadIdx.x & (kWarpSize - 1)) == 0) warp_absmax[threadIdx.x / kWarpSize] = absmax;
    row_barrier(local_row, tpr, p.rows_per_block);
    const int warps_per_row = tpr / kWarpSize;
    float row_absmax = 0.0f;
    for (int w = 0; w < warps_per_row; ++w)
      row_absmax = fmaxf(row_absmax, warp_absmax[local_row * warps_per_row + w]);
    const float scale = __fdiv_rn(fmaxf(row_absmax, kMinAbsMax), Out::kQmax);
    if (t == 0 && row_in_out) p.scale_per_token[row] = row_has_x ? scale : 0.0f;
    const RowDivider divide = RowDivider::for_scale(scale);

    // Backwards, so the chunk still in registers is quantised first and never re-read.
    for (int c = p.chunks - 1; c >= 0; --c) {
      if (c != p.chunks - 1) load_chunk(c);
#pragma unroll
      for (int i = 0; i < kVecsPerThread; ++i) {
        const int64_t idx = c * chunk_vecs + static_cast<int64_t>(i) * tpr + t;
        if (idx >= p.n_vec || !row_in_out) continue;
        const CodeVec<In, Out> codes = quantize_vec<In, Out>(v[i], divide);
        store_codes<In, Out>(stage_row + idx * kElems, codes);
      }
    }
  } else {
    for (int c = 0; c < p.chunks; ++c) {
      load_chunk(c);
#pragma unroll
      for (int i = 0; i < kVecsPerThread; ++i) {
        const int64_t idx = c * chunk_vecs + static_cast<int64_t>(i) * tpr + t;
        if (idx < p.n_vec) *reinterpret_cast<uint4*>(stage_row + idx * kVecBytes) = v[i];
      }
    }
  }

  // ---- lifting: out unit U (2 elements) of block g, position u, holds source pair
  // g*N + (u+1)/2; window w covers units 2w, 2w+1 = pairs w, w+1 of the block.
  using Stage = std::conditional_t<kStageBytes == 1, uint8_t, uint16_t>;
  Stage* stage = reinterpret_cast<Stage*>(stage_row);
  for (int64_t e = p.n_vec * kElems + t; e < p.stage_elems; e += tpr) stage[e] = 0;
  row_barrier(local_row, tpr, p.rows_per_block);
  if (!row_in_out) return;

  if constexpr (kOp == RowOp::kQuant) {
    // Plain quant: copy the staged codes out with 16-byte stores; columns past the staged row
    // (k_out > k) are zero.
    uint8_t* out_row = static_cast<uint8_t*>(p.out) + row * p.k_out;
    const int64_t out_vecs = ceil_div_dev(p.k_out, kVecBytes);
    for (int64_t j = t; j < out_vecs; j += tpr) {
      const int64_t col0 = j * kVecBytes;
      const uint4 codes = col0 < p.stage_elems ? *reinterpret_cast<const uint4*>(stage_row + col0)
                                               : make_uint4(0, 0, 0, 0);
      if (p.out_vec_ok) {
        *reinterpret_cast<uint4*>(out_row + col0) = codes;
      } else {
        store_bytes_bounded(out_row + col0, codes, p.k_out - col0);
      }
    }
    return;
  }

  using Unit = std::conditional_t<kStageBytes == 1, uint16_t, uint32_t>;
  constexpr int kUnitsPerVec = kVecBytes / static_cast<int>(sizeof(Unit));
  const Unit* units = reinterpret_cast<const Unit*>(stage_row);
  const uint32_t units_per_block = static_cast<uint32_t>(p.block_len - 2);
  const uint32_t pairs_per_block = static_cast<uint32_t>(p.block_len / 2);
  const int64_t row_bytes = p.k_out * kStageBytes;  // K' is a multiple of 32: whole vectors
  const int64_t out_vecs = row_bytes / kVecBytes;
  uint8_t* out_row = static_cast<uint8_t*>(p.out) + row * row_bytes;
  for (int64_t j = t; j < out_vecs; j += tpr) {
    const uint32_t u0 = static_cast<uint32_t>(j) * kUnitsPerVec;
    uint32_t g = u0 / units_per_block;
    uint32_t u = u0 - g * units_per_block;
    uint32_t words[4] = {0, 0, 0, 0};
#pragma unroll
    for (int i = 0; i < kUnitsPerVec; ++i) {
      const uint32_t value =
          (u0 + i < p.lift_units)
              ? static_cast<uint32_t>(units[g * pairs_per_block + ((u + 1) >> 1)])
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
    if (p.out_vec_ok) {
      *reinterpret_cast<uint4*>(dst) = packed;
    } else {
      store_bytes_bounded(dst, packed, kVecBytes);
    }
  }
}

// ---- host side ------------------------------------------------------------------------------
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

bool aligned(const void* p, int64_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) == 0;
}

int elems_per_vec(DType x_dtype) { return static_cast<int>(kVecBytes / dtype_size(x_dtype)); }

void require_x_dtype(const char* op, DType x_dtype, bool allow_f32) {
  const bool ok =
      x_dtype == DType::kBF16 || x_dtype == DType::kF16 || (allow_f32 && x_dtype == DType::kF32);
  SS_REQUIRE_T(NotSupportedError, ok,
               op << ": x dtype '" << dtype_name(x_dtype) << "' is not supported (bf16, fp16"
                  << (allow_f32 ? ", fp32" : "") << ")");
}

void require_out_dtype(const char* op, DType out_dtype) {
  SS_REQUIRE_T(
      NotSupportedError, out_dtype == DType::kI8 || out_dtype == DType::kFP8E4M3,
      op << ": output dtype '" << dtype_name(out_dtype) << "' is not supported (int8, fp8)");
}

KernelLaunchConfig resolve_row_config(const char* op, int64_t n_vec, KernelLaunchConfig config) {
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

int64_t max_dynamic_smem() {
  int device = 0;
  SS_CUDA_CHECK(cudaGetDevice(&device));
  int bytes = 0;
  SS_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return bytes;
}

template <class In, class Out, RowOp kOp>
void launch_rows(const char* op, RowParams p, int block_threads, int64_t smem_bytes,
                 cudaStream_t stream) {
  const int64_t blocks = ceil_div(p.m_pad, p.rows_per_block);
  SS_REQUIRE(blocks <= std::numeric_limits<int32_t>::max(),
             op << ": m_pad " << p.m_pad << " needs " << blocks << " blocks (too many)");
  auto kernel = quant_rows_kernel<In, Out, kOp>;
  if (smem_bytes > kDefaultSmemLimit) {
    const int64_t limit = max_dynamic_smem();
    SS_REQUIRE_T(NotSupportedError, smem_bytes <= limit,
                 op << ": K = " << p.k << " needs " << smem_bytes
                    << " bytes of shared memory per block (rows_per_block " << p.rows_per_block
                    << "); this GPU allows " << limit);
    SS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem_bytes)));
  }
  kernel<<<static_cast<unsigned>(blocks), block_threads, static_cast<size_t>(smem_bytes), stream>>>(
      p);
  SS_CHECK_LAUNCH(op);
}

template <RowOp kOp, class Out>
void dispatch_x(const char* op, DType x_dtype, const RowParams& p, int threads, int64_t smem,
                cudaStream_t stream) {
  switch (x_dtype) {
    case DType::kBF16:
      return launch_rows<Bf16In, Out, kOp>(op, p, threads, smem, stream);
    case DType::kF16:
      return launch_rows<F16In, Out, kOp>(op, p, threads, smem, stream);
    case DType::kF32:
      if constexpr (kOp != RowOp::kSlide)
        return launch_rows<F32In, Out, kOp>(op, p, threads, smem, stream);
      break;
    default:
      break;
  }
  throw NotSupportedError(std::string(op) + ": x dtype '" + std::string(dtype_name(x_dtype)) +
                          "' is not supported");
}

template <RowOp kOp>
void dispatch(const char* op, DType x_dtype, DType out_dtype, const RowParams& p, int threads,
              int64_t smem, cudaStream_t stream) {
  if constexpr (kOp == RowOp::kSlide) {
    return dispatch_x<kOp, RawOut>(op, x_dtype, p, threads, smem, stream);
  } else {
    if (out_dtype == DType::kI8)
      return dispatch_x<kOp, I8Out>(op, x_dtype, p, threads, smem, stream);
    return dispatch_x<kOp, E4M3Out>(op, x_dtype, p, threads, smem, stream);
  }
}

// Checks shared by all three launchers; fills the x-side and launch fields of RowParams.
RowParams common_params(const char* op, const void* x, DType x_dtype, int64_t m, int64_t k,
                        int64_t ld_x, void* out, int64_t m_pad, KernelLaunchConfig config,
                        KernelLaunchConfig* resolved) {
  SS_REQUIRE(x != nullptr, op << ": x is null");
  SS_REQUIRE(out != nullptr, op << ": out is null");
  SS_REQUIRE(k > 0, op << ": k must be > 0 (got " << k << ")");
  SS_REQUIRE(ld_x >= k, op << ": ld_x " << ld_x << " is smaller than k " << k);
  SS_REQUIRE(m_pad >= m, op << ": m_pad " << m_pad << " is smaller than m " << m);
  RowParams p{};
  p.x = x;
  p.m = m;
  p.k = k;
  p.ld_x = ld_x;
  p.out = out;
  p.m_pad = m_pad;
  const int elems = elems_per_vec(x_dtype);
  p.n_vec = ceil_div(k, elems);
  *resolved = resolve_row_config(op, p.n_vec, config);
  p.rows_per_block = resolved->rows_per_block;
  p.threads_per_row = resolved->block_threads / resolved->rows_per_block;
  const int64_t chunks =
      ceil_div(p.n_vec, static_cast<int64_t>(kVecsPerThread) * p.threads_per_row);
  SS_REQUIRE(chunks <= std::numeric_limits<int32_t>::max(), op << ": k " << k << " is too large");
  p.chunks = static_cast<int>(chunks);
  p.x_vec_ok = aligned(x, kVecBytes) && (ld_x * dtype_size(x_dtype)) % kVecBytes == 0;
  return p;
}

// Lifting fields of RowParams; returns the dynamic shared memory the launch needs.
int64_t lift_params(const char* op, Sparsity sparsity, int x_elems_per_vec,
                    int64_t stage_bytes_per_elem, RowParams* p) {
  SS_REQUIRE_T(NotSupportedError, sparsity.block() <= kMaxSlideBlock,
               op << ": pattern " << sparsity.name() << " (L = " << sparsity.block()
                  << ") is not supported; L from 4 to " << kMaxSlideBlock);
  const int64_t k_slide = sparsity.k_slide(p->k);
  SS_REQUIRE(k_slide < std::numeric_limits<int32_t>::max(),
             op << ": K' = " << k_slide << " is too large (at most 2^31 - 1)");
  p->k_out = k_slide;
  p->block_len = sparsity.block();
  p->lift_units = static_cast<uint32_t>(sparsity.k_slide_unaligned(p->k) / 2);
  const int64_t staged = p->n_vec * x_elems_per_vec;  // the kernel stages whole vectors
  p->stage_elems = round_up(std::max(sparsity.k_pad(p->k), staged), 16);
  p->out_vec_ok = aligned(p->out, kVecBytes);
  return p->stage_elems * stage_bytes_per_elem * p->rows_per_block;
}

}  // namespace

KernelLaunchConfig resolve_quant_config(DType x_dtype, int64_t k, KernelLaunchConfig config) {
  require_x_dtype("resolve_quant_config", x_dtype, true);
  SS_REQUIRE(k > 0, "resolve_quant_config: k must be > 0 (got " << k << ")");
  return resolve_row_config("resolve_quant_config", ceil_div(k, elems_per_vec(x_dtype)), config);
}

void launch_quant(const void* x, DType x_dtype, int64_t m, int64_t k, int64_t ld_x, DType out_dtype,
                  void* out, int64_t m_pad, int64_t k_out, float* scale_per_token,
                  cudaStream_t stream, KernelLaunchConfig config) {
  const char* op = "quant";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  require_x_dtype(op, x_dtype, true);
  require_out_dtype(op, out_dtype);
  SS_REQUIRE(scale_per_token != nullptr, op << ": scale_per_token is null");
  SS_REQUIRE(k_out >= k, op << ": k_out " << k_out << " is smaller than k " << k);
  KernelLaunchConfig resolved;
  RowParams p = common_params(op, x, x_dtype, m, k, ld_x, out, m_pad, config, &resolved);
  p.k_out = k_out;
  p.scale_per_token = scale_per_token;
  p.out_vec_ok = aligned(out, kVecBytes) && k_out % kVecBytes == 0;
  p.stage_elems = round_up(p.n_vec * elems_per_vec(x_dtype), kVecBytes);
  const int64_t smem = p.stage_elems * p.rows_per_block;
  dispatch<RowOp::kQuant>(op, x_dtype, out_dtype, p, resolved.block_threads, smem, stream);
}

void launch_quant_slide(const void* x, DType x_dtype, int64_t m, int64_t k, int64_t ld_x,
                        Sparsity sparsity, DType out_dtype, void* out, int64_t m_pad,
                        float* scale_per_token, cudaStream_t stream, KernelLaunchConfig config) {
  const char* op = "quant_slide";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  require_x_dtype(op, x_dtype, true);
  require_out_dtype(op, out_dtype);
  SS_REQUIRE(scale_per_token != nullptr, op << ": scale_per_token is null");
  KernelLaunchConfig resolved;
  RowParams p = common_params(op, x, x_dtype, m, k, ld_x, out, m_pad, config, &resolved);
  p.scale_per_token = scale_per_token;
  const int64_t smem = lift_params(op, sparsity, elems_per_vec(x_dtype), 1, &p);
  dispatch<RowOp::kQuantSlide>(op, x_dtype, out_dtype, p, resolved.block_threads, smem, stream);
}

void launch_slide(const void* x, DType x_dtype, int64_t m, int64_t k, int64_t ld_x,
                  Sparsity sparsity, void* out, int64_t m_pad, cudaStream_t stream,
                  KernelLaunchConfig config) {
  const char* op = "slide";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  require_x_dtype(op, x_dtype, false);
  KernelLaunchConfig resolved;
  RowParams p = common_params(op, x, x_dtype, m, k, ld_x, out, m_pad, config, &resolved);
  const int64_t smem = lift_params(op, sparsity, elems_per_vec(x_dtype), 2, &p);
  dispatch<RowOp::kSlide>(op, x_dtype, x_dtype, p, resolved.block_threads, smem, stream);
}

}  // namespace slidesparse
