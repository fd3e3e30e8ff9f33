// Sliding window decomposition (DESIGN.md section 1): W [rows, K] that is Z:L becomes W'
// [rows, K'] that is 2:4. Block g of L weights maps to slots [g*S, g*S + S) of W' with
// S = 4(N-1); window w of the block covers block positions [2w, 2w+4) and owns slots
// g*S + 4w + j (j = 0..3) holding w[g*L + 2w + j] or zero. Non-zeros are handed to windows
// greedily, left to right, at most 2 per window. Slots past (K_pad/L)*S are zero.
// Instantiated for float, int8_t, bf16_t and fp8_e4m3_t.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "slidesparse/core/prune.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// W [rows, k] -> W' [rows, sparsity.k_slide(k)]. Throws PatternError naming the row and block
// when a block holds more than L-2 non-zeros; Error on bad shapes.
template <class T>
std::vector<T> slide_weights(std::span<const T> w, int64_t rows, int64_t k, Sparsity sparsity);

// W' [rows, sparsity.k_slide(k)] -> W [rows, k]. Throws Error when w_slid is not a valid
// decomposition (a non-zero in a padding slot, two non-zeros landing on one position).
template <class T>
std::vector<T> unslide_weights(std::span<const T> w_slid, int64_t rows, int64_t k,
                               Sparsity sparsity);

// First group of 4 along cols (cols % 4 == 0) holding more than 2 non-zeros, or nullopt.
template <class T>
std::optional<PatternViolation> find_2to4_violation(std::span<const T> w, int64_t rows,
                                                    int64_t cols);

// Throws PatternError "<what>: breaks 2:4: row r, group g (...)".
template <class T>
void check_2to4(std::span<const T> w, int64_t rows, int64_t cols, const std::string& what);

}  // namespace slidesparse
