// Launchers of the per-token activation kernels of the linear layer: quant (x -> int8/fp8 codes
// plus one scale per row), quant_slide (the same, lifted to K' in the sliding-window layout of
// core/lift.h) and slide (bf16/fp16 lifting only). Arithmetic is core/quant.h's, bit for bit.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/launch_config.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// Largest L the lifting kernels take (2:4 ... 2:16).
inline constexpr int kMaxSlideBlock = 16;

// x: [m, k] row-major, row stride ld_x elements, x_dtype kBF16, kF16 or kF32.
// out: [m_pad, k_out] row-major (row stride k_out), out_dtype kI8 or kFP8E4M3; columns >= k and
// rows >= m are written with 0. scale_per_token: [m_pad] floats, rows >= m written with 0.
// config: zeros = default; block_threads (multiple of 32, <= 1024) and rows_per_block are
// honoured (block_threads / rows_per_block threads per row, a multiple of 32) or rejected.
void launch_quant(const void* x, DType x_dtype, int64_t m, int64_t k, int64_t ld_x, DType out_dtype,
                  void* out, int64_t m_pad, int64_t k_out, float* scale_per_token,
                  cudaStream_t stream, KernelLaunchConfig config = {});

// Same, plus activation lifting to K' = sparsity.k_slide(k): out is [m_pad, K'] (row stride K').
// Any L from 4 to 16 (else NotSupportedError). The scale comes from the un-lifted row.
void launch_quant_slide(const void* x, DType x_dtype, int64_t m, int64_t k, int64_t ld_x,
                        Sparsity sparsity, DType out_dtype, void* out, int64_t m_pad,
                        float* scale_per_token, cudaStream_t stream,
                        KernelLaunchConfig config = {});

// BF16 path: lifting only. x_dtype kBF16 (or kF16); out has the same dtype, [m_pad, K'],
// padding rows and slots zero. For L = 4 this is a padded copy.
void launch_slide(const void* x, DType x_dtype, int64_t m, int64_t k, int64_t ld_x,
                  Sparsity sparsity, void* out, int64_t m_pad, cudaStream_t stream,
                  KernelLaunchConfig config = {});

// The launch configuration the launchers use for `config` on a row of `k` elements of x_dtype
// (zeros resolved to the defaults); throws Error when `config` is invalid. For the tuner and
// the benchmark reports.
KernelLaunchConfig resolve_quant_config(DType x_dtype, int64_t k, KernelLaunchConfig config);

}  // namespace slidesparse
