// Sliding window decomposition W (Z:L) -> W' (2:4), its inverse, and the 2:4 checker (slide.h).
// The greedy hand-out of non-zeros to windows always succeeds for at most L-2 non-zeros per block
// (Hall's condition on intervals, DESIGN.md section 1); a failure there would be a bug here.
#include "slidesparse/core/slide.h"

#include <algorithm>
#include <sstream>

#include "core/shape_check.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/error.h"

namespace slidesparse {

template <class T>
std::vector<T> slide_weights(std::span<const T> w, int64_t rows, int64_t k, Sparsity sparsity) {
  detail::require_matrix("slide_weights", "weight", w.size(), rows, k);
  const int64_t k_slide = sparsity.k_slide(k);
  detail::checked_elements("slide_weights", "slid weight", rows, k_slide);
  const int64_t block = sparsity.block();
  const int64_t slots_per_block = sparsity.slots_per_block();
  const int64_t windows = sparsity.windows_per_block();
  const int64_t blocks = sparsity.k_pad(k) / block;
  const int max_nonzeros = sparsity.max_nonzeros_per_block();

  std::vector<T> slid(static_cast<size_t>(rows * k_slide), T{});
  std::vector<int64_t> positions;  // block positions of the non-zeros, ascending
  positions.reserve(static_cast<size_t>(block));
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = w.data() + r * k;
    T* out = slid.data() + r * k_slide;
    for (int64_t g = 0; g < blocks; ++g) {
      const int64_t c0 = g * block;
      const int64_t c1 = std::min(c0 + block, k);
      positions.clear();
      for (int64_t c = c0; c < c1; ++c)
        if (!is_zero(row[c])) positions.push_back(c - c0);
      if (static_cast<int64_t>(positions.size()) > max_nonzeros) {
        PatternViolation v;
        v.row = r;
        v.block = g;
        v.nonzeros = static_cast<int>(positions.size());
        v.max_nonzeros = max_nonzeros;
        v.col_begin = c0;
        v.col_end = c1;
        throw PatternError("slide_weights: weight breaks " + sparsity.name() + " (" +
                               sparsity.density_name() + " density): " + v.describe(),
                           r, g);
      }
      // Window `win` covers positions [2 win, 2 win + 4) and takes up to 2 of the not yet
      // placed non-zeros, lowest position first.
      size_t next = 0;
      for (int64_t win = 0; win < windows && next < positions.size(); ++win) {
        for (int taken = 0; taken < 2 && next < positions.size(); ++taken) {
          const int64_t p = positions[next];
          if (p >= 2 * win + 4) break;
          SS_REQUIRE(p >= 2 * win, "slide_weights: internal error: row " << r << ", block " << g
                                                                         << ": position " << p
                                                                         << " left unplaced");
          out[g * slots_per_block + 4 * win + (p - 2 * win)] = row[c0 + p];
          ++next;
        }
      }
      SS_REQUIRE(next == positions.size(), "slide_weights: internal error: row "
                                               << r << ", block " << g << ": "
                                               << positions.size() - next
                                               << " non-zeros left unplaced");
    }
  }
  return slid;
}

template <class T>
std::vector<T> unslide_weights(std::span<const T> w_slid, int64_t rows, int64_t k,
                               Sparsity sparsity) {
  SS_REQUIRE(k >= 1, "unslide_weights: K must be >= 1 (got " << k << ")");
  const int64_t k_slide = sparsity.k_slide(k);
  detail::require_matrix("unslide_weights", "slid weight", w_slid.size(), rows, k_slide);
  const std::vector<int64_t> source = lift_source_cols(k, sparsity);
  std::vector<T> w(static_cast<size_t>(rows * k), T{});
  std::vector<int64_t> slot_of_col(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = w_slid.data() + r * k_slide;
    T* out = w.data() + r * k;
    for (int64_t slot = 0; slot < k_slide; ++slot) {
      if (is_zero(row[slot])) continue;
      const int64_t col = source[static_cast<size_t>(slot)];
      SS_REQUIRE(col >= 0, "unslide_weights: not a valid "
                               << sparsity.name() << " decomposition: row " << r << ", slot "
                               << slot << " is padding but holds a non-zero");
      SS_REQUIRE(is_zero(out[col]), "unslide_weights: not a valid "
                                        << sparsity.name() << " decomposition: row " << r
                                        << ", slots " << slot_of_col[static_cast<size_t>(col)]
                                        << " and " << slot << " both hold column " << col);
      out[col] = row[slot];
      slot_of_col[static_cast<size_t>(col)] = slot;
    }
  }
  return w;
}

template <class T>
std::optional<PatternViolation> find_2to4_violation(std::span<const T> w, int64_t rows,
                                                    int64_t cols) {
  detail::require_matrix("find_2to4_violation", "weight", w.size(), rows, cols);
  SS_REQUIRE(cols % 4 == 0,
             "find_2to4_violation: cols must be a multiple of 4 for 2:4 (got " << cols << ")");
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = w.data() + r * cols;
    for (int64_t c0 = 0; c0 < cols; c0 += 4) {
      int nonzeros = 0;
      for (int64_t c = c0; c < c0 + 4; ++c) nonzeros += is_zero(row[c]) ? 0 : 1;
      if (nonzeros > 2) {
        PatternViolation v;
        v.row = r;
        v.block = c0 / 4;
        v.nonzeros = nonzeros;
        v.max_nonzeros = 2;
        v.col_begin = c0;
        v.col_end = c0 + 4;
        return v;
      }
    }
  }
  return std::nullopt;
}

template <class T>
void check_2to4(std::span<const T> w, int64_t rows, int64_t cols, const std::string& what) {
  if (auto v = find_2to4_violation(w, rows, cols)) {
    std::ostringstream os;
    os << what << ": breaks 2:4: row " << v->row << ", group " << v->block << " (cols "
       << v->col_begin << ".." << v->col_end - 1 << "): " << v->nonzeros
       << " non-zeros, at most 2 allowed";
    throw PatternError(os.str(), v->row, v->block);
  }
}

#define SS_INSTANTIATE_SLIDE(T)                                                                \
  template std::vector<T> slide_weights<T>(std::span<const T>, int64_t, int64_t, Sparsity);    \
  template std::vector<T> unslide_weights<T>(std::span<const T>, int64_t, int64_t, Sparsity);  \
  template std::optional<PatternViolation> find_2to4_violation<T>(std::span<const T>, int64_t, \
                                                                  int64_t);                    \
  template void check_2to4<T>(std::span<const T>, int64_t, int64_t, const std::string&);

SS_INSTANTIATE_SLIDE(float)
SS_INSTANTIATE_SLIDE(int8_t)
SS_INSTANTIATE_SLIDE(bf16_t)
SS_INSTANTIATE_SLIDE(fp8_e4m3_t)
#undef SS_INSTANTIATE_SLIDE

}  // namespace slidesparse
