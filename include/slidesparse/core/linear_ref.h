// Reference linear layer y = x . W^T + b (DESIGN.md section 2), dense and through SlideSparse, on
// the CPU. Everything on the GPU is checked against these.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "slidesparse/core/float_formats.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// Inputs of a reference layer. `weight` is the pruned full-precision weight [n, k] (float);
// compute is kI8, kFP8E4M3 or kBF16.
struct LinearRefProblem {
  std::span<const bf16_t> x;    // [m, k]
  std::span<const float> weight;  // [n, k], already Z:L for the SlideSparse path
  std::span<const float> bias;    // [n] or empty
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  DType compute = DType::kI8;
};

struct LinearRefResult {
  std::vector<float> y;                  // [m, n] before the final bf16 rounding
  std::vector<bf16_t> y_bf16;            // [m, n]
  std::vector<int32_t> acc_int32;        // [m, n], INT8 only
  std::vector<float> acc_float;          // [m, n], FP8 / BF16 only
  std::vector<float> scale_per_token;    // [m], INT8 / FP8 only
  std::vector<float> scale_per_channel;  // [n], INT8 / FP8 only
};

// Dense path: quant(x) per token, quant(W) per channel, GEMM over K, dequant + bias.
LinearRefResult linear_dense_ref(const LinearRefProblem& problem);
// SlideSparse path: quant(W) per channel -> slide to W'; quant_slide(x); GEMM over K'; dequant.
// For INT8 the accumulator equals linear_dense_ref's bit for bit.
LinearRefResult linear_slide_ref(const LinearRefProblem& problem, Sparsity sparsity);

}  // namespace slidesparse
