// Launchers of the RMSNorm kernels of the engine: the plain norm (bf16 out, optionally over a
// gathered subset of rows, for the final norm on the sampled positions) and the norm fused with
// the per-token 8-bit quantisation (and lifting) that feeds a layer's quantised-input entry.
// Rounding as CONTRACTS.md step 1: r = 1/sqrt(mean(x^2) + eps) in float, n = bf16(x * r),
// y = bf16(n * w). The sum of squares has one fixed order for every launch configuration (see
// rms_norm.cu), so the fused kernel is bit-equal to launch_rms_norm then launch_quant(_slide).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"
#include "cuda/launch_config.h"

namespace slidesparse {

// x: bf16 [rows, ld_x]; weight: bf16 [k]; y: bf16 [m, ld_y]. Output row i is the norm of x row
// row_index[i] (int32, device, each in range: not checked) or of row i when row_index is null.
void launch_rms_norm(const void* x, int64_t ld_x, const int32_t* row_index, const void* weight,
                     float eps, int64_t m, int64_t k, void* y, int64_t ld_y, cudaStream_t stream);

// RMSNorm of x [m, k] (bf16, row stride ld_x) then per-token quantisation to out_dtype (kI8 or
// kFP8E4M3), exactly as launch_quant (slide == nullptr: out [m_pad, k_out], k_out >= k) or
// launch_quant_slide (out [m_pad, k_out] with k_out == slide->k_slide(k), L from 4 to 16). Rows
// >= m and columns past the data are written with 0, scale_per_token [m_pad] is 0 for rows >= m.
// config: as launch_quant's (resolve_quant_config(kBF16, k, config) gives the one used).
void launch_rms_norm_quant(const void* x, int64_t ld_x, const void* weight, float eps, int64_t m,
                           int64_t k, DType out_dtype, const Sparsity* slide, void* out,
                           int64_t m_pad, int64_t k_out, float* scale_per_token,
                           cudaStream_t stream, KernelLaunchConfig config = {});

}  // namespace slidesparse
