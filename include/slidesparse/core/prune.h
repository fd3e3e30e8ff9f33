// Magnitude pruning of a row-major [rows, cols] weight to Z:L along cols, and the pattern checker.
// A short tail block (cols not a multiple of L) is treated as zero-padded: its padding counts as
// zeros. Instantiated for float, int8_t, bf16_t and fp8_e4m3_t.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "slidesparse/sparsity.h"

namespace slidesparse {

struct PatternViolation {
  int64_t row = 0;
  int64_t block = 0;      // block index along cols (block of L for Z:L, group of 4 for 2:4)
  int nonzeros = 0;       // non-zeros found in that block
  int max_nonzeros = 0;   // the most the pattern allows
  int64_t col_begin = 0;  // columns [col_begin, col_end) of the block (clipped to cols)
  int64_t col_end = 0;
  std::string describe() const;  // "row 3, block 7 (cols 56..63): 7 non-zeros, at most 6 allowed"
};

// In place: in every block of L the 2 smallest |w| become 0 (ties: the lower column first).
// Throws Error on rows/cols < 1 or w.size() != rows*cols.
template <class T>
void prune_magnitude(std::span<T> w, int64_t rows, int64_t cols, Sparsity sparsity);

// First block (row-major order) holding more than L-2 non-zeros, or nullopt.
template <class T>
std::optional<PatternViolation> find_pattern_violation(std::span<const T> w, int64_t rows,
                                                       int64_t cols, Sparsity sparsity);

// Throws PatternError "<what>: breaks 2:8: row r, block b (...)" on the first violation.
template <class T>
void check_pattern(std::span<const T> w, int64_t rows, int64_t cols, Sparsity sparsity,
                   const std::string& what);

}  // namespace slidesparse
