// One linear weight on its way through the converter: source bytes (BF16 / FP16 / FP32, or a
// compressed-tensors W8A8 weight with its weight_scale) -> pruned to Z:L (or checked, with
// --assume-pruned) -> quantised per output channel -> slid to W' [n, k_slide] (slide_weight of
// core/weight_prep.h). `verify` reruns the first steps on the source to compare against the
// converted file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/weight_prep.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

struct LinearSource {
  std::string name;  // tensor name, for messages
  DType dtype = DType::kBF16;
  int64_t n = 0;
  int64_t k = 0;
  std::span<const std::byte> weight;  // [n, k] row-major, dtype
  // compressed-tensors quantised sources (I8 / F8_E4M3 weight): the weight_scale tensor, shape
  // [n, 1], [n], [1] or [] (per-tensor), F32 / BF16 / F16.
  DType scale_dtype = DType::kF32;
  int64_t scale_count = 0;
  std::span<const std::byte> scale;
};

// The Z:L weight in the output precision, not yet slid (cols == k): the shared host weight
// preparation's type (core/weight_prep.h), so that the converter, the layer and the CPU
// reference quantise and slide with the same code.
using PreparedLinear = WeightCodes;

// Prunes (or, with assume_pruned, checks: PatternError naming tensor, row and block) and quantises.
// Same-precision quantised sources keep their codes and scales (pruning codes by magnitude equals
// pruning the dequantised row); others are dequantised to float first.
PreparedLinear prepare_linear(const LinearSource& source, Sparsity sparsity, DType precision,
                              bool assume_pruned, int threads);

}  // namespace slidesparse
