// Launcher of greedy sampling: the argmax of each logits row.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace slidesparse {

// logits: bf16 [m, ld] (device), the first vocab columns of each row count; tokens_out: int32
// [m]. The lowest index wins ties (+0 and -0 are equal); NaN never wins (a row of only NaN gives
// 0), as core/ops_ref.h argmax_ref.
void launch_argmax(const void* logits, int64_t ld, int64_t m, int64_t vocab, int32_t* tokens_out,
                   cudaStream_t stream);

}  // namespace slidesparse
