// Launcher of the dequant epilogue of the 8-bit linear layer: the GEMM accumulator times the
// per-token and per-channel scales, plus bias, rounded to bf16. Bit-equal to core/gemm_ref.h
// dequant_ref (each multiply and add rounded on its own, never fused); optionally plus a bf16
// residual inside the same rounding (dequant_residual_ref).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/launch_config.h"
#include "slidesparse/dtype.h"

namespace slidesparse {

// acc: [m, n] row-major with row stride ld_acc, acc_dtype kI32, kF32 or kBF16.
// y[m][n] = bf16( ((float(acc) * scale_per_token[m]) * scale_per_channel[n]) + bias[n] ).
// Null scale pointers mean factor 1, null bias means no bias. y: bf16 [m, n], row stride ld_y.
// config: zeros = default; block_threads (multiple of 32, <= 1024; each thread owns 8 columns)
// and rows_per_block (rows each thread walks, reusing its per-channel scales) are honoured.
void launch_dequant(const void* acc, DType acc_dtype, int64_t m, int64_t n, int64_t ld_acc,
                    const float* scale_per_token, const float* scale_per_channel, const float* bias,
                    void* y, int64_t ld_y, cudaStream_t stream, KernelLaunchConfig config = {});

// The same with a bf16 residual added before the one rounding:
// y[m][n] = bf16( float(residual[m][n]) + ((float(acc) * s_tok[m]) * s_ch[n] + bias[n]) ).
// residual: bf16 [m, n], row stride ld_residual; it may be y itself (then ld_residual == ld_y),
// and must not overlap y otherwise. Null residual: exactly the launcher above.
void launch_dequant(const void* acc, DType acc_dtype, int64_t m, int64_t n, int64_t ld_acc,
                    const float* scale_per_token, const float* scale_per_channel, const float* bias,
                    const void* residual, int64_t ld_residual, void* y, int64_t ld_y,
                    cudaStream_t stream, KernelLaunchConfig config = {});

// The configuration launch_dequant uses for `config` at this n; throws Error when invalid.
KernelLaunchConfig resolve_dequant_config(int64_t n, KernelLaunchConfig config);

}  // namespace slidesparse
