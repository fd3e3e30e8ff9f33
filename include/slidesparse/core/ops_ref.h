// CPU references of the element-wise and row-wise model ops (CONTRACTS.md "Rounding points of the
// model"): RMSNorm, SiLU*mul, embedding lookup and greedy argmax. The GPU kernels in
// src/kernels/{rms_norm,silu_mul,embedding,sampling} are tested against these. Every op computes
// in float (products, sums and divisions each rounded on their own: no FMA contraction) and
// rounds to bf16 exactly where the comment says.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "slidesparse/core/float_formats.h"

namespace slidesparse {

// y [m, k] = RMSNorm of x [m, k] with weight [k], HF's order (step 1):
//   r = 1 / sqrtf(mean + eps), mean = float(sum_k float(x)^2 (in double) / k)
//   n = bf16(float(x) * r);  y = bf16(float(n) * float(weight))
// The sum of squares is accumulated in double here; a GPU float tree sum may change the last bit
// of r, so GPU tests allow one bf16 ulp on y (bit-equal everywhere else is the norm).
std::vector<bf16_t> rms_norm_ref(std::span<const bf16_t> x, int64_t m, int64_t k,
                                 std::span<const bf16_t> weight, float eps);

// y [m, inter] from gate_up [m, 2*inter] (gate columns [0, inter), up columns [inter, 2*inter)),
// step 7: y = bf16(silu(g) * u) with silu(g) = g / (1 + expf(-g)), every op in float.
std::vector<bf16_t> silu_mul_ref(std::span<const bf16_t> gate_up, int64_t m, int64_t inter);

// out [m, hidden] = table[tokens[i]] (table bf16 [vocab, hidden]). A token outside [0, vocab)
// gives a row of canonical bf16 NaN (0x7FFF), as the GPU kernel writes; callers that must refuse
// bad ids check them first (ref_model_logits does).
std::vector<bf16_t> embedding_ref(std::span<const bf16_t> table, int64_t vocab, int64_t hidden,
                                  std::span<const int32_t> tokens);

// Per row of logits [m, vocab]: the index of the largest value; ties go to the lowest index (+0
// and -0 tie), NaN never wins; a row of only NaN gives 0.
std::vector<int32_t> argmax_ref(std::span<const bf16_t> logits, int64_t m, int64_t vocab);

// bf16(float(residual) + y) element-wise: the one rounding of a residual folded into a linear
// layer's epilogue (steps 5 and 8), with y the layer's float output before rounding.
std::vector<bf16_t> add_residual_ref(std::span<const float> y, std::span<const bf16_t> residual);

}  // namespace slidesparse
