// Per-token activation kernels: quant (x -> int8/fp8 codes + scale per row), quant_slide (the
// same, lifted to K' in the sliding-window layout) and slide (bf16/fp16 lifting only). A group of
// threads_per_row threads owns one row and stages it in registers (16-byte loads), so x is read
// from DRAM once: absmax, reduction over the row's threads, then quantise and store (through shared
// memory when lifting). Arithmetic follows core/quant.h exactly: __fdiv_rn, round half to even,
// saturation.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "cuda/check.h"
#include "kernels/quant.h"
#include "kernels/quant_device.cuh"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using namespace quant_detail;

enum class RowOp { kQuant, kQuantSlide, kSlide };

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
      for (int i = 0; i < kVecsPerThread; ++i) absmax_update<In>(thread_absmax, v[i]);
    }
    const float row_absmax =
        row_absmax_reduce(thread_absmax.value(), warp_absmax, local_row, tpr, p.rows_per_block);
    const float scale = row_scale<Out>(row_absmax);
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

  // Zero the staged row past the data, then copy it out (plain) or gather it (lifting).
  using Stage = std::conditional_t<kStageBytes == 1, uint8_t, uint16_t>;
  Stage* stage = reinterpret_cast<Stage*>(stage_row);
  for (int64_t e = p.n_vec * kElems + t; e < p.stage_elems; e += tpr) stage[e] = 0;
  row_barrier(local_row, tpr, p.rows_per_block);
  if (!row_in_out) return;

  if constexpr (kOp == RowOp::kQuant) {
    store_staged_codes(stage_row, p.stage_elems, static_cast<uint8_t*>(p.out) + row * p.k_out,
                       p.k_out, p.out_vec_ok, t, tpr);
  } else {
    using Unit = std::conditional_t<kStageBytes == 1, uint16_t, uint32_t>;
    const int64_t row_bytes = p.k_out * kStageBytes;  // K' is a multiple of 32: whole vectors
    lift_staged_row<Unit>(stage_row, static_cast<uint8_t*>(p.out) + row * row_bytes, row_bytes,
                          p.block_len, p.lift_units, p.out_vec_ok, t, tpr);
  }
}

// ---- host side ------------------------------------------------------------------------------
int elems_per_vec(DType x_dtype) { return static_cast<int>(kVecBytes / dtype_size(x_dtype)); }

void require_x_dtype(const char* op, DType x_dtype, bool allow_f32) {
  const bool ok =
      x_dtype == DType::kBF16 || x_dtype == DType::kF16 || (allow_f32 && x_dtype == DType::kF32);
  SS_REQUIRE_T(NotSupportedError, ok,
               op << ": x dtype '" << dtype_name(x_dtype) << "' is not supported (bf16, fp16"
                  << (allow_f32 ? ", fp32" : "") << ")");
}

template <class In, class Out, RowOp kOp>
void launch_rows(const char* op, RowParams p, int block_threads, int64_t smem_bytes,
                 cudaStream_t stream) {
  const int64_t blocks = ceil_div(p.m_pad, p.rows_per_block);
  SS_REQUIRE(blocks <= std::numeric_limits<int32_t>::max(),
             op << ": m_pad " << p.m_pad << " needs " << blocks << " blocks (too many)");
  auto kernel = quant_rows_kernel<In, Out, kOp>;
  allow_dynamic_smem(op, kernel, smem_bytes, p.k, p.rows_per_block);
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
