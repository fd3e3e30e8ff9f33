// Random inputs for benchmarks, generated on the device (hashing the element index, so any size
// is cheap and reproducible). Never zeros: they hide unwritten data and can run faster.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace slidesparse {

// out[i] = bf16 uniform in [-amplitude, amplitude), from (seed, i).
void fill_random_bf16(void* out, int64_t count, uint64_t seed, float amplitude,
                      cudaStream_t stream);

}  // namespace slidesparse
