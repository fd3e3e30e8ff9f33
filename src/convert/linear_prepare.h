// One linear weight on its way through the converter: source bytes (BF16 / FP16 / FP32, or a
// compressed-tensors W8A8 weight with its weight_scale) -> pruned to Z:L (or checked, with
// --assume-pruned) -> quantised per output channel -> slid to W' [n, k_slide]. `verify` reruns the
// first steps on the source to compare against the converted file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "slidesparse/core/float_formats.h"
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

// The Z:L weight in the output precision, not yet slid.
struct PreparedLinear {
  DType precision = DType::kI8;
  int64_t n = 0;
  int64_t k = 0;
  std::vector<int8_t> int8_codes;        // [n, k] for kI8
  std::vector<fp8_e4m3_t> fp8_codes;     // [n, k] for kFP8E4M3
  std::vector<bf16_t> bf16_values;       // [n, k] for kBF16
  std::vector<float> scale_per_channel;  // [n] for kI8 / kFP8E4M3
};

// Runs fn(row_begin, row_end) over [0, rows) in up to `threads` contiguous chunks; inline when
// threads <= 1 or rows * cols is too small to pay for starting threads. The first exception thrown
// by any chunk is rethrown after all chunks finish.
void parallel_rows(int64_t rows, int64_t cols, int threads,
                   const std::function<void(int64_t, int64_t)>& fn);

// Prunes (or, with assume_pruned, checks: PatternError naming tensor, row and block) and quantises.
// Same-precision quantised sources keep their codes and scales (pruning codes by magnitude equals
// pruning the dequantised row); others are dequantised to float first.
PreparedLinear prepare_linear(const LinearSource& source, Sparsity sparsity, DType precision,
                              bool assume_pruned, int threads);

// W' [n, sparsity.k_slide(k)] bytes in the prepared precision.
std::vector<std::byte> slide_prepared(const PreparedLinear& prepared, Sparsity sparsity,
                                      int threads);

}  // namespace slidesparse
