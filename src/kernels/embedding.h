// Launcher of the token embedding lookup: h0[i] = table[tokens[i]] (bf16 rows).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace slidesparse {

// table: bf16 [vocab, hidden] (row stride hidden); tokens: int32 [m] (device); out: bf16
// [m, hidden]. A token id outside [0, vocab) writes a row of canonical NaN (0x7FFF, as embedding_ref) and, when error_flag (a device
// int) is given, sets *error_flag = 1 (it is never cleared here).
void launch_embedding(const void* table, int64_t vocab, int64_t hidden, const int32_t* tokens,
                      int64_t m, void* out, cudaStream_t stream, int* error_flag = nullptr);

}  // namespace slidesparse
