// Random operands made on the GPU, the one device random fill of the project (tuner, benchmarks,
// random full-size engine weights: a weight of 37888 x 5376 takes seconds to make on the host),
// and the device-side comparison of two GEMM outputs. Values are never zero-heavy: timing on zeros
// can be faster than on real data.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "slidesparse/dtype.h"

namespace slidesparse {

// Fills count elements of `dtype` (kI8, kFP8E4M3, kBF16, kF32) with values drawn from `seed`:
// int8 in [-127, 127], fp8/bf16/f32 in [-1, 1]·amplitude with no NaN or Inf.
void fill_random(void* data, DType dtype, int64_t count, uint64_t seed, cudaStream_t stream,
                 float amplitude = 1.0f);

// A row-major [rows, cols] 2:4 matrix (cols % 4 == 0): in every group of 4, two positions drawn
// from `seed` hold non-zero random values and the other two zeros.
void fill_random_2to4(void* data, DType dtype, int64_t rows, int64_t cols, uint64_t seed,
                      cudaStream_t stream);

// ||a - b|| / ||b|| over `count` elements of `dtype` (kI32, kF32, kBF16), summed in double;
// +inf when an element of a is NaN/Inf and b's is not. Synchronises `stream`.
double relative_difference(const void* a, const void* b, DType dtype, int64_t count,
                           cudaStream_t stream);

}  // namespace slidesparse
