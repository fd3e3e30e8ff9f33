// RMSNorm kernels: bf16 out (optionally over gathered rows), or fused with quant / quant_slide
// (fused_row.cuh). One group of threads per row keeps the row in registers from the sum of
// squares to the stores, so x is read once. The sum of squares has a fixed order that does not
// depend on the launch configuration: each 16-byte vector v (8 elements) is summed as
// s_v = fma chain over its elements in order; each aligned group G of 32 consecutive vectors is
// reduced as an xor-butterfly over v mod 32 (pairs 16 apart first, then 8, 4, 2, 1); the group
// sums are added in the order G = l, l+32, l+64, ... for l = 0..31, and those 32 partials reduced
// by the same butterfly. (A group always sits in one warp's register slot, since threads_per_row
// is a multiple of 32, which is what makes this order reachable at every configuration.)
#include <limits>

#include "cuda/check.h"
#include "kernels/fused_row.cuh"
#include "kernels/quant.h"
#include "kernels/rms_norm.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using namespace fused_detail;

struct NormParams {
  const uint16_t* x;
  int64_t ld_x;
  const int32_t* row_index;  // null: row i reads x row i
  const uint16_t* weight;
  float eps;
  RowShape shape;
  int64_t n_groups;       // ceil(n_vec / 32): group sums per row
  int64_t groups_stride;  // floats per row in shared memory
  bool x_vec_ok;
  bool w_vec_ok;
  // bf16 output (launch_rms_norm)
  uint16_t* y;
  int64_t ld_y;
  bool y_vec_ok;
  // quantised output (launch_rms_norm_quant)
  QuantTarget q;
};

// Sum of squares of one vector's 8 elements, in element order.
__device__ __forceinline__ float vec_sum_squares(const uint4& v) {
  float s = 0.0f;
#pragma unroll
  for (int e = 0; e < Bf16In::kElems; ++e) {
    const float x = Bf16In::to_float(elem_bits<Bf16In>(v, e));
    s = __fmaf_rn(x, x, s);
  }
  return s;
}

// keep + (partner's send), choosing which half a lane keeps by one bit of its lane index.
__device__ __forceinline__ float exchange_add(float mine_lo, float mine_hi, bool keep_hi,
                                              int offset) {
  const float keep = keep_hi ? mine_hi : mine_lo;
  const float send = keep_hi ? mine_lo : mine_hi;
  return __fadd_rn(keep, __shfl_xor_sync(0xFFFFFFFFu, send, offset));
}

// The xor-butterfly sum over the warp of each of the 8 slots, as a reduce-scatter: afterwards
// lane l holds the total of slot ((l >> 4) & 1) * 4 + ((l >> 3) & 1) * 2 + ((l >> 2) & 1). Each
// slot's total is the same tree (lanes 16 apart first, then 8, 4, 2, 1) as a plain butterfly.
__device__ __forceinline__ float warp_reduce_scatter8(const float (&s)[8], int* slot) {
  const int lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  const bool b16 = lane & 16, b8 = lane & 8, b4 = lane & 4;
  float h[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) h[j] = exchange_add(s[j], s[j + 4], b16, 16);
  float q[2];
#pragma unroll
  for (int j = 0; j < 2; ++j) q[j] = exchange_add(h[j], h[j + 2], b8, 8);
  float total = exchange_add(q[0], q[1], b4, 4);
  total = __fadd_rn(total, __shfl_xor_sync(0xFFFFFFFFu, total, 2));
  total = __fadd_rn(total, __shfl_xor_sync(0xFFFFFFFFu, total, 1));
  *slot = (b16 ? 4 : 0) + (b8 ? 2 : 0) + (b4 ? 1 : 0);
  return total;
}
static_assert(kVecsPerThread == 8, "warp_reduce_scatter8 reduces 8 register slots");

// n = bf16(x * r), y = bf16(n * w) for the 8 elements of a vector. The second product is
// rounded once (mul.rn.bf16x2), which equals bf16(float(n) * float(w)) whenever that float
// product is exact, i.e. unless |n * w| < 2^-120 or so.
__device__ __forceinline__ uint4 norm_vec(const uint4& x, const uint4& w, float r) {
  auto word = [r](uint32_t xw, uint32_t ww) {
    const float lo = __uint_as_float(xw << 16);
    const float hi = __uint_as_float(xw & 0xFFFF0000u);
    const __nv_bfloat162 n = __floats2bfloat162_rn(__fmul_rn(lo, r), __fmul_rn(hi, r));
    const __nv_bfloat162 y = __hmul2_rn(n, *reinterpret_cast<const __nv_bfloat162*>(&ww));
    return *reinterpret_cast<const uint32_t*>(&y);
  };
  return make_uint4(word(x.x, w.x), word(x.y, w.y), word(x.z, w.z), word(x.w, w.w));
}

// The values of one row: x (raw, for the sum of squares) and its norm.
struct NormSource {
  const uint16_t* x_row;
  const uint16_t* weight;
  int64_t k;
  int64_t n_vec;
  bool x_vec_ok;
  bool w_vec_ok;
  bool has_x;
  RowCtx ctx;
  float r;

  __device__ void load_raw(int c, uint4 (&v)[kVecsPerThread]) const {
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) {
      const int64_t idx = ctx.vec(c, i);
      v[i] = (has_x && idx < n_vec) ? load_vec<Bf16In>(x_row, idx, k, x_vec_ok)
                                    : make_uint4(0, 0, 0, 0);
    }
  }
  __device__ void finish(int c, uint4 (&v)[kVecsPerThread]) const {
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) {
      const int64_t idx = ctx.vec(c, i);
      if (has_x && idx < n_vec)
        v[i] = norm_vec(v[i], load_vec<Bf16In>(weight, idx, k, w_vec_ok), r);
    }
  }
  __device__ void load(int c, uint4 (&v)[kVecsPerThread]) const {
    load_raw(c, v);
    finish(c, v);
  }
};

// r = 1 / sqrt(sum / k + eps) in the fixed order of the file comment. Leaves the last chunk's
// raw x in v. Every thread of the block calls it (one row barrier).
__device__ float row_inv_rms(const NormSource& src, const NormParams& p, float* groups,
                             uint4 (&v)[kVecsPerThread]) {
  const RowCtx& ctx = src.ctx;
  const int lane = ctx.t & (kWarpSize - 1);
  const int64_t warp_in_row = ctx.t / kWarpSize;
  for (int c = 0; c < p.shape.chunks; ++c) {
    src.load_raw(c, v);
    float s[kVecsPerThread];
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) s[i] = vec_sum_squares(v[i]);
    int slot = 0;
    const float total = warp_reduce_scatter8(s, &slot);
    const int64_t group =
        (c * ctx.chunk_vecs + static_cast<int64_t>(slot) * ctx.tpr) / kWarpSize + warp_in_row;
    if ((lane & 3) == 0 && group < p.n_groups) groups[group] = total;
  }
  row_barrier(ctx.local_row, ctx.tpr, p.shape.rows_per_block);
  float acc = 0.0f;
  for (int64_t g = lane; g < p.n_groups; g += kWarpSize) acc = __fadd_rn(acc, groups[g]);
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    acc = __fadd_rn(acc, __shfl_xor_sync(0xFFFFFFFFu, acc, offset));
  const float mean = __fdiv_rn(acc, static_cast<float>(p.shape.k));
  return __frcp_rn(__fsqrt_rn(__fadd_rn(mean, p.eps)));
}

// (512, 2): at most 64 registers per thread, as quant.cu's row kernel.
template <class Out, int kL, bool kQuant>
__global__ void __launch_bounds__(kMaxBlockThreads, 2) rms_norm_rows_kernel(const NormParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float warp_absmax[kMaxBlockThreads / kWarpSize];
  const RowCtx ctx = RowCtx::make(p.shape.tpr, p.shape.rows_per_block, p.shape.m, p.shape.m_pad);
  uint8_t* stage_row = smem + ctx.local_row * p.q.stage_bytes;
  float* groups = reinterpret_cast<float*>(smem + p.shape.rows_per_block * p.q.stage_bytes) +
                  ctx.local_row * p.groups_stride;

  int64_t x_row = ctx.row;
  if (p.row_index != nullptr && ctx.row_has_x) x_row = p.row_index[ctx.row];
  NormSource src{p.x + (ctx.row_has_x ? x_row * p.ld_x : 0),
                 p.weight,
                 p.shape.k,
                 p.shape.n_vec,
                 p.x_vec_ok,
                 p.w_vec_ok,
                 ctx.row_has_x,
                 ctx,
                 0.0f};
  uint4 v[kVecsPerThread];
  const float r = row_inv_rms(src, p, groups, v);
  src.r = ctx.row_has_x ? r : 0.0f;  // padding rows stay zero even at eps = 0
  const int last = p.shape.chunks - 1;
  src.finish(last, v);
  if constexpr (kQuant) {
    quantize_row<Out, kL>(src, ctx, p.shape, p.q, stage_row, warp_absmax, v, last);
  } else {
    uint16_t* y_row = ctx.row_has_x ? p.y + ctx.row * p.ld_y : p.y;
    store_bf16_row(src, ctx, p.shape, y_row, p.y_vec_ok, v, last);
  }
}

// ---- host side ------------------------------------------------------------------------------
NormParams norm_params(const char* op, const void* x, int64_t ld_x, const int32_t* row_index,
                       const void* weight, float eps, int64_t m, int64_t k, int64_t m_pad,
                       KernelLaunchConfig config, KernelLaunchConfig* resolved) {
  SS_REQUIRE(x != nullptr, op << ": x is null");
  SS_REQUIRE(weight != nullptr, op << ": weight is null");
  SS_REQUIRE(k > 0, op << ": k must be > 0 (got " << k << ")");
  SS_REQUIRE(ld_x >= k, op << ": ld_x " << ld_x << " is smaller than k " << k);
  SS_REQUIRE(m_pad >= m, op << ": m_pad " << m_pad << " is smaller than m " << m);
  SS_REQUIRE(eps >= 0.0f && eps < std::numeric_limits<float>::infinity(),
             op << ": eps must be finite and >= 0 (got " << eps << ")");
  NormParams p{};
  p.x = static_cast<const uint16_t*>(x);
  p.ld_x = ld_x;
  p.row_index = row_index;
  p.weight = static_cast<const uint16_t*>(weight);
  p.eps = eps;
  p.shape.m = m;
  p.shape.m_pad = m_pad;
  p.shape.k = k;
  p.shape.n_vec = ceil_div(k, Bf16In::kElems);
  *resolved = resolve_row_config(op, p.shape.n_vec, config);
  p.shape.rows_per_block = resolved->rows_per_block;
  p.shape.tpr = resolved->block_threads / resolved->rows_per_block;
  const int64_t chunks =
      ceil_div(p.shape.n_vec, static_cast<int64_t>(kVecsPerThread) * p.shape.tpr);
  SS_REQUIRE(chunks <= std::numeric_limits<int32_t>::max(), op << ": k " << k << " is too large");
  p.shape.chunks = static_cast<int>(chunks);
  p.n_groups = ceil_div(p.shape.n_vec, kWarpSize);
  p.groups_stride = round_up(p.n_groups, 4);
  p.x_vec_ok = aligned(x, kVecBytes) && (ld_x * 2) % kVecBytes == 0;
  p.w_vec_ok = aligned(weight, kVecBytes);
  return p;
}

template <class Out, int kL, bool kQuant>
void launch_norm(const char* op, const NormParams& p, int block_threads, cudaStream_t stream) {
  const int64_t blocks = ceil_div(p.shape.m_pad, p.shape.rows_per_block);
  SS_REQUIRE(blocks <= std::numeric_limits<int32_t>::max(),
             op << ": " << p.shape.m_pad << " rows need " << blocks << " blocks (too many)");
  const int64_t smem = row_smem_bytes(p.q.stage_bytes, p.groups_stride, p.shape.rows_per_block);
  auto kernel = rms_norm_rows_kernel<Out, kL, kQuant>;
  allow_dynamic_smem(op, kernel, smem, p.shape.k, p.shape.rows_per_block);
  kernel<<<static_cast<unsigned>(blocks), block_threads, static_cast<size_t>(smem), stream>>>(p);
  SS_CHECK_LAUNCH(op);
}

template <class Out>
void launch_norm_quant(const char* op, const NormParams& p, int block_len, int block_threads,
                       cudaStream_t stream) {
  if (block_len == 0) return launch_norm<Out, 0, true>(op, p, block_threads, stream);
  dispatch_block_len(block_len, [&](auto l) {
    launch_norm<Out, decltype(l)::value, true>(op, p, block_threads, stream);
  });
}

}  // namespace

void launch_rms_norm(const void* x, int64_t ld_x, const int32_t* row_index, const void* weight,
                     float eps, int64_t m, int64_t k, void* y, int64_t ld_y, cudaStream_t stream) {
  const char* op = "rms_norm";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  SS_REQUIRE(y != nullptr, op << ": y is null");
  SS_REQUIRE(ld_y >= k, op << ": ld_y " << ld_y << " is smaller than k " << k);
  KernelLaunchConfig resolved;
  NormParams p = norm_params(op, x, ld_x, row_index, weight, eps, m, k, m, {}, &resolved);
  p.y = static_cast<uint16_t*>(y);
  p.ld_y = ld_y;
  p.y_vec_ok = aligned(y, kVecBytes) && (ld_y * 2) % kVecBytes == 0;
  launch_norm<I8Out, 0, false>(op, p, resolved.block_threads, stream);
}

void launch_rms_norm_quant(const void* x, int64_t ld_x, const void* weight, float eps, int64_t m,
                           int64_t k, DType out_dtype, const Sparsity* slide, void* out,
                           int64_t m_pad, int64_t k_out, float* scale_per_token,
                           cudaStream_t stream, KernelLaunchConfig config) {
  const char* op = slide != nullptr ? "rms_norm_quant_slide" : "rms_norm_quant";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  require_out_dtype(op, out_dtype);
  SS_REQUIRE(out != nullptr, op << ": out is null");
  SS_REQUIRE(scale_per_token != nullptr, op << ": scale_per_token is null");
  int block_len = 0;
  if (slide != nullptr) {
    block_len = slide->block();
    SS_REQUIRE_T(NotSupportedError, block_len <= kMaxSlideBlock,
                 op << ": pattern " << slide->name() << " (L = " << block_len
                    << ") is not supported; L from 4 to " << kMaxSlideBlock);
    SS_REQUIRE(k > 0 && k_out == slide->k_slide(k),
               op << ": k_out " << k_out << " must be K' = " << (k > 0 ? slide->k_slide(k) : 0)
                  << " for " << slide->name() << " at k " << k);
  } else {
    SS_REQUIRE(k_out >= k, op << ": k_out " << k_out << " is smaller than k " << k);
  }
  KernelLaunchConfig resolved;
  NormParams p = norm_params(op, x, ld_x, nullptr, weight, eps, m, k, m_pad, config, &resolved);
  p.q.out = out;
  p.q.k_out = k_out;
  p.q.scale_per_token = scale_per_token;
  p.q.out_vec_ok = aligned(out, kVecBytes) && k_out % kVecBytes == 0;
  p.q.stage_bytes = stage_bytes_for(p.shape.n_vec, block_len, k_out);
  if (out_dtype == DType::kI8) {
    launch_norm_quant<I8Out>(op, p, block_len, resolved.block_threads, stream);
  } else {
    launch_norm_quant<E4M3Out>(op, p, block_len, resolved.block_threads, stream);
  }
}

}  // namespace slidesparse
