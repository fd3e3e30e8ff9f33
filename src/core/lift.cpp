// Activation lifting x [M, K] -> x' [M, K'] (lift.h): a plain gather through the slot -> column
// map, which is the same for every row, so it is computed once per call.
#include "slidesparse/core/lift.h"

#include "core/shape_check.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/error.h"

namespace slidesparse {

int64_t lift_source_col(int64_t slot, int64_t k, Sparsity sparsity) {
  SS_REQUIRE(k >= 1, "lift_source_col: K must be >= 1 (got " << k << ")");
  const int64_t k_slide = sparsity.k_slide(k);
  SS_REQUIRE(slot >= 0 && slot < k_slide, "lift_source_col: slot " << slot << " is outside [0, "
                                                                   << k_slide << ") for K = " << k
                                                                   << " and " << sparsity.name());
  const int64_t slots_per_block = sparsity.slots_per_block();
  const int64_t group = slot / slots_per_block;
  if (group >= sparsity.k_pad(k) / sparsity.block()) return -1;  // alignment padding of K'
  const int64_t in_block = slot % slots_per_block;
  const int64_t window = in_block / 4;
  const int64_t col = group * sparsity.block() + 2 * window + in_block % 4;
  return col < k ? col : -1;  // K_pad zero fill
}

std::vector<int64_t> lift_source_cols(int64_t k, Sparsity sparsity) {
  SS_REQUIRE(k >= 1, "lift_source_cols: K must be >= 1 (got " << k << ")");
  const int64_t k_slide = sparsity.k_slide(k);
  std::vector<int64_t> cols(static_cast<size_t>(k_slide));
  for (int64_t slot = 0; slot < k_slide; ++slot)
    cols[static_cast<size_t>(slot)] = lift_source_col(slot, k, sparsity);
  return cols;
}

template <class T>
std::vector<T> lift_activations(std::span<const T> x, int64_t m, int64_t k, Sparsity sparsity) {
  detail::require_matrix("lift_activations", "x", x.size(), m, k);
  const int64_t k_slide = sparsity.k_slide(k);
  detail::checked_elements("lift_activations", "lifted x", m, k_slide);
  const std::vector<int64_t> source = lift_source_cols(k, sparsity);
  std::vector<T> lifted(static_cast<size_t>(m * k_slide), T{});
  for (int64_t r = 0; r < m; ++r) {
    const T* row = x.data() + r * k;
    T* out = lifted.data() + r * k_slide;
    for (int64_t slot = 0; slot < k_slide; ++slot) {
      const int64_t col = source[static_cast<size_t>(slot)];
      if (col >= 0) out[slot] = row[col];
    }
  }
  return lifted;
}

template std::vector<float> lift_activations<float>(std::span<const float>, int64_t, int64_t,
                                                    Sparsity);
template std::vector<int8_t> lift_activations<int8_t>(std::span<const int8_t>, int64_t, int64_t,
                                                      Sparsity);
template std::vector<bf16_t> lift_activations<bf16_t>(std::span<const bf16_t>, int64_t, int64_t,
                                                      Sparsity);
template std::vector<fp8_e4m3_t> lift_activations<fp8_e4m3_t>(std::span<const fp8_e4m3_t>, int64_t,
                                                              int64_t, Sparsity);

}  // namespace slidesparse
