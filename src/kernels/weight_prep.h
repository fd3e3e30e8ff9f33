// GPU weight preparation for layers built from device-resident weights (random full-size models
// made on the GPU): magnitude pruning to Z:L, per-output-channel quantisation and the sliding
// window decomposition W -> W'. Each is bit-equal to its CPU reference in core (prune.h, quant.h,
// slide.h), so a layer prepared here equals one prepared on the host, bit for bit.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// In place on w [rows, cols] (row-major, row stride cols), dtype kF32, kBF16, kI8 or kFP8E4M3:
// in every block of L along a row the 2 smallest |w| become 0, ties to the lower column, NaN
// counted as the largest; a short tail block counts its missing columns as zeros
// (core/prune.h prune_magnitude).
void launch_prune_magnitude(void* w, DType dtype, int64_t rows, int64_t cols, Sparsity sparsity,
                            cudaStream_t stream);

// Per-row symmetric quantisation of w [rows, cols] (kF32 or kBF16) to codes [rows, cols]
// (out_dtype kI8 or kFP8E4M3) and scales [rows] (core/quant.h quantize_rows_int8 / _e4m3).
void launch_quantize_rows(const void* w, DType w_dtype, int64_t rows, int64_t cols, DType out_dtype,
                          void* codes, float* scales, cudaStream_t stream);

// W [rows, k] (kF32, kBF16, kI8 or kFP8E4M3; row stride k) -> W' [rows, sparsity.k_slide(k)]
// (same dtype, every slot written) as core/slide.h slide_weights. A block holding more than L-2
// non-zeros writes nothing meaningful for its row and records itself: *violation (device, set by
// the caller to UINT64_MAX before the launch) receives min(row * blocks_per_row + block) over
// the offending blocks. Asynchronous; slide_weights_on_gpu checks the flag.
void launch_slide_weights(const void* w, DType dtype, int64_t rows, int64_t k, Sparsity sparsity,
                          void* w_slid, unsigned long long* violation, cudaStream_t stream);

// launch_slide_weights plus the check: synchronises `stream` and throws PatternError naming
// `what`, the first offending row and block (and its non-zero count) when W is not Z:L.
void slide_weights_on_gpu(const void* w, DType dtype, int64_t rows, int64_t k, Sparsity sparsity,
                          void* w_slid, cudaStream_t stream, const std::string& what);

}  // namespace slidesparse
