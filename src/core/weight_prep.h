// The one host-side weight preparation, shared by the CPU reference (linear_ref), LinearLayer's
// HostWeight path and the converter: a full-precision weight W [n, k] -> codes in the compute
// dtype, per output channel (int8 / fp8 with one scale per row as core/quant.h; bf16 rounded to
// nearest even) -> for SlideSparse, slid to W' [n, sparsity.k_slide(k)] (core/slide.h). The GPU's
// kernels/weight_prep.cu gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "slidesparse/core/float_formats.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// A weight in its compute dtype; exactly one of the three value vectors is filled.
struct WeightCodes {
  DType dtype = DType::kI8;              // kI8, kFP8E4M3 or kBF16
  int64_t n = 0;                         // rows: output channels
  int64_t cols = 0;                      // k, or sparsity.k_slide(k) once slid
  std::vector<int8_t> int8_codes;        // [n, cols] for kI8
  std::vector<fp8_e4m3_t> fp8_codes;     // [n, cols] for kFP8E4M3
  std::vector<bf16_t> bf16_values;       // [n, cols] for kBF16
  std::vector<float> scale_per_channel;  // [n] for kI8 / kFP8E4M3, empty for kBF16

  // The values of `dtype`, row-major, as bytes.
  std::span<const std::byte> bytes() const;
};

// Quantises (kI8, kFP8E4M3) or rounds (kBF16) the float weight [n, k] per output channel, in up
// to `threads` row chunks (same bits for any count). NotSupportedError for other dtypes.
WeightCodes quantize_weight(std::span<const float> w, int64_t n, int64_t k, DType compute,
                            int threads = 1);

// Codes that exist already (a quantised checkpoint, bf16 values, a slid W'): `data` holds
// [n, cols] values of `dtype`, copied; 8-bit codes come with their n per-channel scales.
WeightCodes weight_codes_from(DType dtype, const void* data, int64_t n, int64_t cols,
                              std::span<const float> scale_per_channel = {});

// W' [n, sparsity.k_slide(cols)] of the codes [n, cols], scales carried over. Throws PatternError
// naming the row and block when the codes are not Z:L.
WeightCodes slide_weight(const WeightCodes& codes, Sparsity sparsity, int threads = 1);

}  // namespace slidesparse
