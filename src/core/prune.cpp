// Magnitude pruning to Z:L and the Z:L pattern checker. Blocks run along the columns of each row;
// a short tail block counts its missing columns as zeros (the K_pad zero fill).
#include "slidesparse/core/prune.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "core/shape_check.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

// |v| for ordering; NaN sorts as the largest so it is never chosen as "small".
template <class T>
float magnitude(T v) {
  const float f = std::fabs(to_float(v));
  return std::isnan(f) ? std::numeric_limits<float>::infinity() : f;
}

}  // namespace

std::string PatternViolation::describe() const {
  std::ostringstream os;
  os << "row " << row << ", block " << block << " (cols " << col_begin << ".." << col_end - 1
     << "): " << nonzeros << " non-zeros, at most " << max_nonzeros << " allowed";
  return os.str();
}

template <class T>
void prune_magnitude(std::span<T> w, int64_t rows, int64_t cols, Sparsity sparsity) {
  detail::require_matrix("prune_magnitude", "weight", w.size(), rows, cols);
  const int64_t block = sparsity.block();
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(block));
  for (int64_t r = 0; r < rows; ++r) {
    T* row = w.data() + r * cols;
    for (int64_t c0 = 0; c0 < cols; c0 += block) {
      const int64_t c1 = std::min(c0 + block, cols);
      const int64_t padding = block - (c1 - c0);
      const int64_t to_zero = std::max<int64_t>(0, sparsity.zeros() - padding);
      if (to_zero == 0) continue;
      order.clear();
      for (int64_t c = c0; c < c1; ++c) order.push_back(c);
      // Smallest magnitude first; ties go to the lower column (stable on the column order).
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return magnitude(row[a]) < magnitude(row[b]); });
      for (int64_t i = 0; i < to_zero; ++i) row[order[static_cast<size_t>(i)]] = T{};
    }
  }
}

template <class T>
std::optional<PatternViolation> find_pattern_violation(std::span<const T> w, int64_t rows,
                                                       int64_t cols, Sparsity sparsity) {
  detail::require_matrix("find_pattern_violation", "weight", w.size(), rows, cols);
  const int64_t block = sparsity.block();
  const int max_nonzeros = sparsity.max_nonzeros_per_block();
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = w.data() + r * cols;
    for (int64_t c0 = 0; c0 < cols; c0 += block) {
      const int64_t c1 = std::min(c0 + block, cols);
      int nonzeros = 0;
      for (int64_t c = c0; c < c1; ++c) nonzeros += is_zero(row[c]) ? 0 : 1;
      if (nonzeros > max_nonzeros) {
        PatternViolation v;
        v.row = r;
        v.block = c0 / block;
        v.nonzeros = nonzeros;
        v.max_nonzeros = max_nonzeros;
        v.col_begin = c0;
        v.col_end = c1;
        return v;
      }
    }
  }
  return std::nullopt;
}

template <class T>
void check_pattern(std::span<const T> w, int64_t rows, int64_t cols, Sparsity sparsity,
                   const std::string& what) {
  if (auto v = find_pattern_violation(w, rows, cols, sparsity)) {
    throw PatternError(what + ": breaks " + sparsity.name() + " (" + sparsity.density_name() +
                           " density): " + v->describe(),
                       v->row, v->block);
  }
}

#define SS_INSTANTIATE_PRUNE(T)                                                                   \
  template void prune_magnitude<T>(std::span<T>, int64_t, int64_t, Sparsity);                     \
  template std::optional<PatternViolation> find_pattern_violation<T>(std::span<const T>, int64_t, \
                                                                     int64_t, Sparsity);          \
  template void check_pattern<T>(std::span<const T>, int64_t, int64_t, Sparsity,                  \
                                 const std::string&);

SS_INSTANTIATE_PRUNE(float)
SS_INSTANTIATE_PRUNE(int8_t)
SS_INSTANTIATE_PRUNE(bf16_t)
SS_INSTANTIATE_PRUNE(fp8_e4m3_t)
#undef SS_INSTANTIATE_PRUNE

}  // namespace slidesparse
