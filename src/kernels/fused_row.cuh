// The row skeleton of the fused producer -> quant(_slide) kernels (rms_norm.cu, silu_mul.cu):
// a group of threads_per_row threads owns one row of bf16 values made by a "source" (the norm
// of x, or silu(gate) * up), keeps it in registers (8 strided 16-byte vectors per thread per
// chunk), takes the row absmax, quantises with quant_device.cuh's arithmetic and stages the
// codes in shared memory, from where they leave as 16-byte stores (plain, or lifted with the
// compile-time map of FixedLift). The source is read from global memory once per chunk; rows
// of one chunk (K <= 8 * 8 * threads_per_row, every default up to K = 32768) are read once.
// Private to src/kernels (include only from .cu files).
#pragma once

#include <cstdint>

#include "kernels/quant_device.cuh"

namespace slidesparse::fused_detail {

using namespace quant_detail;

// Where one thread sits: its row and its place among the row's threads.
struct RowCtx {
  int tpr;        // threads per row (a multiple of 32)
  int local_row;  // row within the block
  int t;          // thread within the row
  int64_t row;
  bool row_in_out;  // row < m_pad: the row is written
  bool row_has_x;   // row < m: the row has data (else it is written with zeros)
  int64_t chunk_vecs;

  __device__ static RowCtx make(int tpr, int rows_per_block, int64_t m, int64_t m_pad) {
    RowCtx c;
    c.tpr = tpr;
    c.local_row = static_cast<int>(threadIdx.x) / tpr;
    c.t = static_cast<int>(threadIdx.x) - c.local_row * tpr;
    c.row = static_cast<int64_t>(blockIdx.x) * rows_per_block + c.local_row;
    c.row_in_out = c.row < m_pad;
    c.row_has_x = c.row < m;
    c.chunk_vecs = static_cast<int64_t>(kVecsPerThread) * tpr;
    return c;
  }
  // Index of the 16-byte vector in register slot i of chunk c.
  __device__ int64_t vec(int c, int i) const {
    return c * chunk_vecs + static_cast<int64_t>(i) * tpr + t;
  }
};

// Row geometry shared by every fused kernel (host-filled).
struct RowShape {
  int64_t m;
  int64_t m_pad;
  int64_t k;
  int64_t n_vec;  // ceil(k / 8)
  int tpr;
  int rows_per_block;
  int chunks;  // ceil(n_vec / (kVecsPerThread * tpr))
};

// Quantised output of a row (host-filled).
struct QuantTarget {
  void* out;
  int64_t k_out;  // row length in bytes (K' when lifting)
  float* scale_per_token;
  bool out_vec_ok;      // out rows 16-byte aligned: 16-byte stores
  int64_t stage_bytes;  // staged row in shared memory, multiple of 16
};

// The codes of a row as launch_quant / launch_quant_slide write them. `v` holds chunk
// `resident` of the source's values (-1: none); every thread of the block calls this (two row
// barriers).
template <class Out, int kL, class Source>
__device__ void quantize_row(const Source& src, const RowCtx& ctx, const RowShape& shape,
                             const QuantTarget& q, uint8_t* stage_row, float* warp_absmax,
                             uint4 (&v)[kVecsPerThread], int resident) {
  // Absmax backwards, so chunk 0 is in registers for the quantise pass.
  Bf16In::AbsMax thread_absmax;
  for (int c = shape.chunks - 1; c >= 0; --c) {
    if (c != resident) src.load(c, v);
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) absmax_update<Bf16In>(thread_absmax, v[i]);
  }
  const float row_absmax = row_absmax_reduce(thread_absmax.value(), warp_absmax, ctx.local_row,
                                             ctx.tpr, shape.rows_per_block);
  const float scale = row_scale<Out>(row_absmax);
  if (ctx.t == 0 && ctx.row_in_out) q.scale_per_token[ctx.row] = ctx.row_has_x ? scale : 0.0f;
  const RowDivider divide = RowDivider::for_scale(scale);

  for (int c = 0; c < shape.chunks; ++c) {
    if (c != 0) src.load(c, v);
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) {
      const int64_t idx = ctx.vec(c, i);
      if (idx >= shape.n_vec || !ctx.row_in_out) continue;
      store_codes<Bf16In, Out>(stage_row + idx * Bf16In::kElems,
                               quantize_vec<Bf16In, Out>(v[i], divide));
    }
  }
  // Zero the staged row past the codes (whole 8-byte words: n_vec * 8 codes were staged).
  uint2* stage_words = reinterpret_cast<uint2*>(stage_row);
  for (int64_t j = shape.n_vec + ctx.t; j < q.stage_bytes / 8; j += ctx.tpr)
    stage_words[j] = make_uint2(0, 0);
  row_barrier(ctx.local_row, ctx.tpr, shape.rows_per_block);
  if (!ctx.row_in_out) return;

  uint8_t* out_row = static_cast<uint8_t*>(q.out) + ctx.row * q.k_out;
  if constexpr (kL == 0) {
    store_staged_codes(stage_row, q.stage_bytes, out_row, q.k_out, q.out_vec_ok, ctx.t, ctx.tpr);
  } else {
    FixedLift<kL>::store_row(stage_row, out_row, q.k_out, q.out_vec_ok, ctx.t, ctx.tpr);
  }
}

// The source's bf16 values of a row to y_row (k elements): 16-byte stores when y_vec_ok, else
// element stores. `v` holds chunk `resident` (-1: none, or the last chunk: chunks go backwards).
template <class Source>
__device__ void store_bf16_row(const Source& src, const RowCtx& ctx, const RowShape& shape,
                               uint16_t* y_row, bool y_vec_ok, uint4 (&v)[kVecsPerThread],
                               int resident) {
  for (int c = shape.chunks - 1; c >= 0; --c) {
    if (c != resident) src.load(c, v);
    if (!ctx.row_has_x) continue;
#pragma unroll
    for (int i = 0; i < kVecsPerThread; ++i) {
      const int64_t idx = ctx.vec(c, i);
      if (idx >= shape.n_vec) continue;
      const int64_t col0 = idx * Bf16In::kElems;
      if (y_vec_ok && col0 + Bf16In::kElems <= shape.k) {
        *reinterpret_cast<uint4*>(y_row + col0) = v[i];
      } else {
#pragma unroll
        for (int e = 0; e < Bf16In::kElems; ++e)
          if (col0 + e < shape.k)
            y_row[col0 + e] = static_cast<uint16_t>(elem_bits<Bf16In>(v[i], e));
      }
    }
  }
}

// The dynamic shared memory of a row kernel: rows_per_block staged rows of stage_bytes, then
// rows_per_block arrays of `floats_per_row` floats.
inline int64_t row_smem_bytes(int64_t stage_bytes, int64_t floats_per_row, int rows_per_block) {
  return (stage_bytes + round_up(floats_per_row * 4, 16)) * rows_per_block;
}

// Staged bytes per row: the n_vec * 8 codes, and for lifting every super-block's input.
inline int64_t stage_bytes_for(int64_t n_vec, int block_len, int64_t k_out) {
  int64_t bytes = n_vec * Bf16In::kElems;
  if (block_len != 0) {
    const int64_t in_bytes = dispatch_block_len(block_len, [&](auto l) -> int64_t {
      using Lift = FixedLift<decltype(l)::value>;
      return Lift::super_blocks(k_out) * Lift::kInBytes;
    });
    bytes = std::max(bytes, in_bytes);
  }
  return round_up(bytes, kVecBytes);
}

}  // namespace slidesparse::fused_detail
