// Dequant epilogue: y = bf16(((acc * s_tok[m]) * s_ch[n]) + bias[n]) with each operation rounded
// on its own (__fmul_rn / __fadd_rn never contract into an FMA), matching dequant_ref bit for bit;
// with a residual, y = bf16(float(residual) + that), still one bf16 rounding
// (dequant_residual_ref). Each thread owns 8 columns (16-byte loads and stores) and walks
// rows_per_block rows, reusing its per-channel scales and bias.
#include <cuda_bf16.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "cuda/check.h"
#include "kernels/dequant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

constexpr int kCols = 8;  // columns per thread
constexpr int kWarpSize = 32;
constexpr int kMaxBlockThreads = 1024;
constexpr int kDefaultBlockThreads = 256;
constexpr int kDefaultRowsPerBlock = 4;

struct I32Acc {
  using Bits = int32_t;
  __device__ static float to_float(Bits v) { return __int2float_rn(v); }
};
struct F32Acc {
  using Bits = float;
  __device__ static float to_float(Bits v) { return v; }
};
struct Bf16Acc {
  using Bits = uint16_t;
  __device__ static float to_float(Bits v) {
    return __uint_as_float(static_cast<uint32_t>(v) << 16);
  }
};

struct DequantParams {
  const void* acc;
  int64_t m;
  int64_t n;
  int64_t ld_acc;
  const float* scale_per_token;
  const float* scale_per_channel;
  const float* bias;
  uint16_t* y;  // bf16 bits
  int64_t ld_y;
  const uint16_t* residual;  // bf16 bits, may be y itself
  int64_t ld_residual;
  int rows_per_block;
  int64_t col_blocks;  // blocks across one row of n
  bool acc_vec_ok;
  bool y_vec_ok;
  bool residual_vec_ok;
};

// The kCols accumulator values at (row, col0...), as floats; 16-byte loads when aligned.
template <class Acc>
__device__ __forceinline__ void load_acc(const typename Acc::Bits* row, int64_t col0, int64_t n,
                                         bool vec_ok, float (&a)[kCols]) {
  using Bits = typename Acc::Bits;
  if (vec_ok && col0 + kCols <= n) {
    constexpr int kPerVec = 16 / sizeof(Bits);
    const uint4* src = reinterpret_cast<const uint4*>(row + col0);
#pragma unroll
    for (int q = 0; q < kCols / kPerVec; ++q) {
      const uint4 raw = __ldcs(src + q);  // read once: streaming
      const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int e = 0; e < kPerVec; ++e) {
        Bits b;
        if constexpr (sizeof(Bits) == 4) {
          b = __builtin_bit_cast(Bits, words[e]);
        } else {
          b = static_cast<Bits>((words[e / 2] >> (16 * (e & 1))) & 0xFFFFu);
        }
        a[q * kPerVec + e] = Acc::to_float(b);
      }
    }
  } else {
#pragma unroll
    for (int e = 0; e < kCols; ++e) a[e] = col0 + e < n ? Acc::to_float(row[col0 + e]) : 0.0f;
  }
}

// The kCols bf16 residual values at (row, col0...), as floats.
__device__ __forceinline__ void load_residual(const uint16_t* row, int64_t col0, int64_t n,
                                              bool vec_ok, float (&r)[kCols]) {
  if (vec_ok && col0 + kCols <= n) {
    const uint4 raw = *reinterpret_cast<const uint4*>(row + col0);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int e = 0; e < kCols; ++e)
      r[e] = __uint_as_float(((words[e / 2] >> (16 * (e & 1))) & 0xFFFFu) << 16);
  } else {
#pragma unroll
    for (int e = 0; e < kCols; ++e)
      r[e] = col0 + e < n ? __uint_as_float(static_cast<uint32_t>(row[col0 + e]) << 16) : 0.0f;
  }
}

// kResidual is a template argument so that the plain epilogue compiles to the same code as before.
template <class Acc, bool kResidual>
__global__ void __launch_bounds__(kMaxBlockThreads) dequant_kernel(const DequantParams p) {
  using Bits = typename Acc::Bits;
  const int64_t tile = blockIdx.x;
  const int64_t col_block = tile % p.col_blocks;
  const int64_t row_group = tile / p.col_blocks;
  const int64_t col0 = (col_block * blockDim.x + threadIdx.x) * kCols;
  if (col0 >= p.n) return;  // no barriers below

  float s_ch[kCols];
  float b[kCols];
#pragma unroll
  for (int e = 0; e < kCols; ++e) {
    const bool in = col0 + e < p.n;
    s_ch[e] = (p.scale_per_channel != nullptr && in) ? p.scale_per_channel[col0 + e] : 1.0f;
    b[e] = (p.bias != nullptr && in) ? p.bias[col0 + e] : 0.0f;
  }
  const int64_t row_begin = row_group * p.rows_per_block;
  const int64_t row_end = min(p.m, row_begin + p.rows_per_block);
  for (int64_t row = row_begin; row < row_end; ++row) {
    float a[kCols];
    load_acc<Acc>(static_cast<const Bits*>(p.acc) + row * p.ld_acc, col0, p.n, p.acc_vec_ok, a);
    const float s_tok = p.scale_per_token != nullptr ? p.scale_per_token[row] : 1.0f;
    float res[kCols];
    if constexpr (kResidual)
      load_residual(p.residual + row * p.ld_residual, col0, p.n, p.residual_vec_ok, res);
    uint32_t out[kCols / 2] = {0, 0, 0, 0};
#pragma unroll
    for (int e = 0; e < kCols; ++e) {
      float v = a[e];
      // Skipped, not multiplied by 1 / added 0: adding +0 would turn -0 into +0.
      if (p.scale_per_token != nullptr) v = __fmul_rn(v, s_tok);
      if (p.scale_per_channel != nullptr) v = __fmul_rn(v, s_ch[e]);
      if (p.bias != nullptr) v = __fadd_rn(v, b[e]);
      if constexpr (kResidual) v = __fadd_rn(res[e], v);
      const uint32_t bits = __bfloat16_as_ushort(__float2bfloat16_rn(v));
      out[e / 2] |= bits << (16 * (e & 1));
    }
    uint16_t* y_row = p.y + row * p.ld_y;
    if (p.y_vec_ok && col0 + kCols <= p.n) {
      __stcs(reinterpret_cast<uint4*>(y_row + col0), make_uint4(out[0], out[1], out[2], out[3]));
    } else {
#pragma unroll
      for (int e = 0; e < kCols; ++e)
        if (col0 + e < p.n) y_row[col0 + e] = static_cast<uint16_t>(out[e / 2] >> (16 * (e & 1)));
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

KernelLaunchConfig resolve_dequant_config(int64_t n, KernelLaunchConfig config) {
  const char* op = "dequant";
  SS_REQUIRE(n > 0, op << ": n must be > 0 (got " << n << ")");
  SS_REQUIRE(config.block_threads >= 0 && config.rows_per_block >= 0,
             op << ": launch config must not be negative (block_threads " << config.block_threads
                << ", rows_per_block " << config.rows_per_block << ")");
  KernelLaunchConfig r;
  const int64_t threads_for_n = ceil_div(ceil_div(n, kCols), kWarpSize) * kWarpSize;
  r.block_threads = config.block_threads != 0
                        ? config.block_threads
                        : static_cast<int>(std::min<int64_t>(kDefaultBlockThreads, threads_for_n));
  r.rows_per_block = config.rows_per_block != 0 ? config.rows_per_block : kDefaultRowsPerBlock;
  SS_REQUIRE(r.block_threads % kWarpSize == 0 && r.block_threads <= kMaxBlockThreads,
             op << ": block_threads " << r.block_threads << " must be a multiple of " << kWarpSize
                << " and at most " << kMaxBlockThreads);
  return r;
}

void launch_dequant(const void* acc, DType acc_dtype, int64_t m, int64_t n, int64_t ld_acc,
                    const float* scale_per_token, const float* scale_per_channel, const float* bias,
                    void* y, int64_t ld_y, cudaStream_t stream, KernelLaunchConfig config) {
  launch_dequant(acc, acc_dtype, m, n, ld_acc, scale_per_token, scale_per_channel, bias, nullptr, 0,
                 y, ld_y, stream, config);
}

void launch_dequant(const void* acc, DType acc_dtype, int64_t m, int64_t n, int64_t ld_acc,
                    const float* scale_per_token, const float* scale_per_channel, const float* bias,
                    const void* residual, int64_t ld_residual, void* y, int64_t ld_y,
                    cudaStream_t stream, KernelLaunchConfig config) {
  const char* op = "dequant";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  SS_REQUIRE(acc != nullptr, op << ": acc is null");
  SS_REQUIRE(y != nullptr, op << ": y is null");
  SS_REQUIRE(n > 0, op << ": n must be > 0 (got " << n << ")");
  SS_REQUIRE(ld_acc >= n, op << ": ld_acc " << ld_acc << " is smaller than n " << n);
  SS_REQUIRE(ld_y >= n, op << ": ld_y " << ld_y << " is smaller than n " << n);
  SS_REQUIRE(residual == nullptr || ld_residual >= n,
             op << ": ld_residual " << ld_residual << " is smaller than n " << n);
  SS_REQUIRE(residual == nullptr || residual != y || ld_residual == ld_y,
             op << ": a residual that is y itself needs ld_residual == ld_y (" << ld_residual
                << " vs " << ld_y << ")");
  SS_REQUIRE_T(NotSupportedError,
               acc_dtype == DType::kI32 || acc_dtype == DType::kF32 || acc_dtype == DType::kBF16,
               op << ": accumulator dtype '" << dtype_name(acc_dtype)
                  << "' is not supported (int32, fp32, bf16)");
  const KernelLaunchConfig resolved = resolve_dequant_config(n, config);

  DequantParams p{};
  p.acc = acc;
  p.m = m;
  p.n = n;
  p.ld_acc = ld_acc;
  p.scale_per_token = scale_per_token;
  p.scale_per_channel = scale_per_channel;
  p.bias = bias;
  p.y = static_cast<uint16_t*>(y);
  p.ld_y = ld_y;
  p.residual = static_cast<const uint16_t*>(residual);
  p.ld_residual = ld_residual;
  p.rows_per_block = resolved.rows_per_block;
  p.col_blocks = ceil_div(ceil_div(n, kCols), resolved.block_threads);
  p.acc_vec_ok = aligned16(acc) && (ld_acc * dtype_size(acc_dtype)) % 16 == 0;
  p.y_vec_ok = aligned16(y) && (ld_y * 2) % 16 == 0;
  p.residual_vec_ok = residual != nullptr && aligned16(residual) && (ld_residual * 2) % 16 == 0;
  const int64_t blocks = p.col_blocks * ceil_div(m, p.rows_per_block);
  SS_REQUIRE(blocks <= std::numeric_limits<int32_t>::max(),
             op << ": m " << m << " x n " << n << " needs " << blocks
                << " blocks (too many; raise rows_per_block)");
  const dim3 grid(static_cast<unsigned>(blocks));
  auto launch = [&](auto residual_tag) {
    constexpr bool kResidual = decltype(residual_tag)::value;
    switch (acc_dtype) {
      case DType::kI32:
        dequant_kernel<I32Acc, kResidual><<<grid, resolved.block_threads, 0, stream>>>(p);
        break;
      case DType::kF32:
        dequant_kernel<F32Acc, kResidual><<<grid, resolved.block_threads, 0, stream>>>(p);
        break;
      default:
        dequant_kernel<Bf16Acc, kResidual><<<grid, resolved.block_threads, 0, stream>>>(p);
        break;
    }
  };
  if (residual != nullptr)
    launch(std::true_type{});
  else
    launch(std::false_type{});
  SS_CHECK_LAUNCH(op);
}

}  // namespace slidesparse
