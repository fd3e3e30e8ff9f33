// The staging copy of dense BF16 layers whose GEMM cannot read x itself (K not a multiple of 8,
// or an M below its bucket): x [m, k] into [m_pad, k_out] with every padding element written as
// zero on every call, so a scratch shared with other layers never leaks into the GEMM.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace slidesparse {

// x: bf16 [m, k], row stride ld_x; out: bf16 [m_pad, k_out] (row stride k_out), m_pad >= m,
// k_out >= k. Rows >= m and columns >= k of out become 0.
void launch_pad_copy_bf16(const void* x, int64_t m, int64_t k, int64_t ld_x, void* out,
                          int64_t m_pad, int64_t k_out, cudaStream_t stream);

}  // namespace slidesparse
