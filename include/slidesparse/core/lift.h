// Activation lifting: x [M, K] -> x' [M, K'] laid out like W' (see slide.h), so that
// W' . x'^T == W . x^T. Slot g*S + 4w + j of a row holds x[g*L + 2w + j], zero when that column is
// >= K or the slot is alignment padding. The GPU quant_slide kernel implements the same map.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "slidesparse/sparsity.h"

namespace slidesparse {

// Source column of lifted slot `slot` (0 <= slot < k_slide(k)), or -1 where the slot is zero.
int64_t lift_source_col(int64_t slot, int64_t k, Sparsity sparsity);
// lift_source_col for every slot 0 .. k_slide(k)-1 (the whole map of one row).
std::vector<int64_t> lift_source_cols(int64_t k, Sparsity sparsity);

// Instantiated for float, int8_t, bf16_t and fp8_e4m3_t.
template <class T>
std::vector<T> lift_activations(std::span<const T> x, int64_t m, int64_t k, Sparsity sparsity);

}  // namespace slidesparse
