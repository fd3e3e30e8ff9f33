// SwiGLU kernels: a = bf16(silu(g) * u) elementwise (bf16 out), or fused with quant /
// quant_slide through the row skeleton of fused_row.cuh (gate and up read once, a kept in
// registers through absmax and quantisation). silu is evaluated as x * sigmoid(x) with
// sigmoid(x) = (x >= 0 ? 1 : t) / (1 + t), t = exp(-|x|) — the same value as x / (1 + exp(-x)),
// but the division never sees a denominator near overflow, so large negative x keep their tiny
// results instead of flushing to 0.
#include <limits>

#include "cuda/check.h"
#include "kernels/fused_row.cuh"
#include "kernels/quant.h"
#include "kernels/silu_mul.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using namespace fused_detail;

constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float silu(float x) {
  // Every step rounded on its own (no contraction), so all callers get the same bits.
  const float t = exp2f(__fmul_rn(-fabsf(x), kLog2e));
  const float sigmoid = __fdividef(x >= 0.0f ? 1.0f : t, __fadd_rn(1.0f, t));
  return __fmul_rn(x, sigmoid);
}

// a for the 8 elements of a vector (gate g, up u).
__device__ __forceinline__ uint4 silu_mul_vec(const uint4& g, const uint4& u) {
  auto word = [](uint32_t gw, uint32_t uw) {
    const float a_lo = __fmul_rn(silu(__uint_as_float(gw << 16)), __uint_as_float(uw << 16));
    const float a_hi =
        __fmul_rn(silu(__uint_as_float(gw & 0xFFFF0000u)), __uint_as_float(uw & 0xFFFF0000u));
    const __nv_bfloat162 a = __floats2bfloat162_rn(a_lo, a_hi);
    return *reinterpret_cast<const uint32_t*>(&a);
  };
  return make_uint4(word(g.x, u.x), word(g.y, u.y), word(g.z, u.z), word(g.w, u.w));
}

struct SiluParams {
  const uint16_t* gate_up;
  int64_t ld;
  RowShape shape;  // k = inter
  bool vec_ok;     // gate and up vectors 16-byte aligned
  QuantTarget q;
};

// The values of one row: silu(gate) * up.
struct SiluSource {
  const uint16_t* gate_row;
  const uint16_t* up_row;
  int64_t k;
  int64_t n_vec;
  bool vec_ok;
  bool has_x;
  RowCtx ctx;

  __device__ void load(int c, uint4 (&v)[kVecsPerThread]) const {
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) {
      const int64_t idx = ctx.vec(c, i);
      v[i] = (has_x && idx < n_vec) ? silu_mul_vec(load_vec<Bf16In>(gate_row, idx, k, vec_ok),
                                                   load_vec<Bf16In>(up_row, idx, k, vec_ok))
                                    : make_uint4(0, 0, 0, 0);
    }
  }
};

template <class Out, int kL>
__global__ void __launch_bounds__(kMaxBlockThreads, 2) silu_mul_quant_kernel(const SiluParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float warp_absmax[kMaxBlockThreads / kWarpSize];
  const RowCtx ctx = RowCtx::make(p.shape.tpr, p.shape.rows_per_block, p.shape.m, p.shape.m_pad);
  const uint16_t* gate_row = p.gate_up + (ctx.row_has_x ? ctx.row * p.ld : 0);
  const SiluSource src{gate_row, gate_row + p.shape.k, p.shape.k, p.shape.n_vec,
                       p.vec_ok, ctx.row_has_x,        ctx};
  uint4 v[kVecsPerThread];
  quantize_row<Out, kL>(src, ctx, p.shape, p.q, smem + ctx.local_row * p.q.stage_bytes, warp_absmax,
                        v, -1);
}

// Elementwise: one thread per 16-byte vector of y.
__global__ void silu_mul_kernel(const uint16_t* gate_up, int64_t ld, int64_t m, int64_t inter,
                                int64_t n_vec, bool vec_ok, uint16_t* y, bool y_vec_ok) {
  const int64_t total = m * n_vec;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / n_vec;
    const int64_t idx = i - row * n_vec;
    const uint16_t* gate_row = gate_up + row * ld;
    const uint4 a = silu_mul_vec(load_vec<Bf16In>(gate_row, idx, inter, vec_ok),
                                 load_vec<Bf16In>(gate_row + inter, idx, inter, vec_ok));
    uint16_t* y_row = y + row * inter;
    const int64_t col0 = idx * Bf16In::kElems;
    if (y_vec_ok && col0 + Bf16In::kElems <= inter) {
      *reinterpret_cast<uint4*>(y_row + col0) = a;
    } else {
#pragma unroll
      for (int e = 0; e < Bf16In::kElems; ++e)
        if (col0 + e < inter) y_row[col0 + e] = static_cast<uint16_t>(elem_bits<Bf16In>(a, e));
    }
  }
}

template <class Out, int kL>
void launch_fused(const char* op, const SiluParams& p, int block_threads, cudaStream_t stream) {
  const int64_t blocks = ceil_div(p.shape.m_pad, p.shape.rows_per_block);
  SS_REQUIRE(blocks <= std::numeric_limits<int32_t>::max(),
             op << ": " << p.shape.m_pad << " rows need " << blocks << " blocks (too many)");
  const int64_t smem = row_smem_bytes(p.q.stage_bytes, 0, p.shape.rows_per_block);
  auto kernel = silu_mul_quant_kernel<Out, kL>;
  allow_dynamic_smem(op, kernel, smem, p.shape.k, p.shape.rows_per_block);
  kernel<<<static_cast<unsigned>(blocks), block_threads, static_cast<size_t>(smem), stream>>>(p);
  SS_CHECK_LAUNCH(op);
}

template <class Out>
void launch_fused_for_block(const char* op, const SiluParams& p, int block_len, int block_threads,
                            cudaStream_t stream) {
  if (block_len == 0) return launch_fused<Out, 0>(op, p, block_threads, stream);
  dispatch_block_len(block_len, [&](auto l) {
    launch_fused<Out, decltype(l)::value>(op, p, block_threads, stream);
  });
}

void require_gate_up(const char* op, const void* gate_up, int64_t ld, int64_t inter) {
  SS_REQUIRE(gate_up != nullptr, op << ": gate_up is null");
  SS_REQUIRE(inter > 0, op << ": inter must be > 0 (got " << inter << ")");
  SS_REQUIRE(ld >= 2 * inter, op << ": ld " << ld << " is smaller than 2 * inter " << 2 * inter);
}

// gate and up vectors can use 16-byte loads: aligned base, row stride and up offset.
bool gate_up_vec_ok(const void* gate_up, int64_t ld, int64_t inter) {
  return aligned(gate_up, kVecBytes) && (ld * 2) % kVecBytes == 0 && (inter * 2) % kVecBytes == 0;
}

}  // namespace

void launch_silu_mul(const void* gate_up, int64_t ld, int64_t m, int64_t inter, void* y,
                     cudaStream_t stream) {
  const char* op = "silu_mul";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  require_gate_up(op, gate_up, ld, inter);
  SS_REQUIRE(y != nullptr, op << ": y is null");
  const int64_t n_vec = ceil_div(inter, Bf16In::kElems);
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>(ceil_div(m * n_vec, kThreads), int64_t{1} << 20);
  silu_mul_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const uint16_t*>(gate_up), ld, m, inter, n_vec,
      gate_up_vec_ok(gate_up, ld, inter), static_cast<uint16_t*>(y),
      aligned(y, kVecBytes) && (inter * 2) % kVecBytes == 0);
  SS_CHECK_LAUNCH(op);
}

void launch_silu_mul_quant(const void* gate_up, int64_t ld, int64_t m, int64_t inter,
                           DType out_dtype, const Sparsity* slide, void* out, int64_t m_pad,
                           int64_t k_out, float* scale_per_token, cudaStream_t stream,
                           KernelLaunchConfig config) {
  const char* op = slide != nullptr ? "silu_mul_quant_slide" : "silu_mul_quant";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  require_gate_up(op, gate_up, ld, inter);
  require_out_dtype(op, out_dtype);
  SS_REQUIRE(out != nullptr, op << ": out is null");
  SS_REQUIRE(scale_per_token != nullptr, op << ": scale_per_token is null");
  SS_REQUIRE(m_pad >= m, op << ": m_pad " << m_pad << " is smaller than m " << m);
  int block_len = 0;
  if (slide != nullptr) {
    block_len = slide->block();
    SS_REQUIRE_T(NotSupportedError, block_len <= kMaxSlideBlock,
                 op << ": pattern " << slide->name() << " (L = " << block_len
                    << ") is not supported; L from 4 to " << kMaxSlideBlock);
    SS_REQUIRE(k_out == slide->k_slide(inter),
               op << ": k_out " << k_out << " must be K' = " << slide->k_slide(inter) << " for "
                  << slide->name() << " at inter " << inter);
  } else {
    SS_REQUIRE(k_out >= inter, op << ": k_out " << k_out << " is smaller than inter " << inter);
  }
  SiluParams p{};
  p.gate_up = static_cast<const uint16_t*>(gate_up);
  p.ld = ld;
  p.shape.m = m;
  p.shape.m_pad = m_pad;
  p.shape.k = inter;
  p.shape.n_vec = ceil_div(inter, Bf16In::kElems);
  const KernelLaunchConfig resolved = resolve_row_config(op, p.shape.n_vec, config);
  p.shape.rows_per_block = resolved.rows_per_block;
  p.shape.tpr = resolved.block_threads / resolved.rows_per_block;
  const int64_t chunks =
      ceil_div(p.shape.n_vec, static_cast<int64_t>(kVecsPerThread) * p.shape.tpr);
  SS_REQUIRE(chunks <= std::numeric_limits<int32_t>::max(),
             op << ": inter " << inter << " is too large");
  p.shape.chunks = static_cast<int>(chunks);
  p.vec_ok = gate_up_vec_ok(gate_up, ld, inter);
  p.q.out = out;
  p.q.k_out = k_out;
  p.q.scale_per_token = scale_per_token;
  p.q.out_vec_ok = aligned(out, kVecBytes) && k_out % kVecBytes == 0;
  p.q.stage_bytes = stage_bytes_for(p.shape.n_vec, block_len, k_out);
  if (out_dtype == DType::kI8) {
    launch_fused_for_block<I8Out>(op, p, block_len, resolved.block_threads, stream);
  } else {
    launch_fused_for_block<E4M3Out>(op, p, block_len, resolved.block_threads, stream);
  }
}

}  // namespace slidesparse
