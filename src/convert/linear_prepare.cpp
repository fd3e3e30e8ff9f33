// Pruning and quantisation of one linear weight, split over rows for the 2 cores of a development
// machine. All arithmetic is the CPU core's (prune.h, weight_prep.h).
#include "convert/linear_prepare.h"

#include <cmath>
#include <cstring>

#include "core/parallel_rows.h"
#include "io/tensor_data.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

bool is_quantized(DType d) { return d == DType::kI8 || d == DType::kFP8E4M3; }

// Per-channel scales of a quantised source, broadcast from per-tensor where needed.
std::vector<float> source_scales(const LinearSource& s) {
  SS_REQUIRE_T(FormatError, s.scale_count == s.n || s.scale_count == 1,
               "tensor '" << s.name << "': weight_scale has " << s.scale_count
                          << " values; expected " << s.n << " (per channel) or 1 (per tensor)");
  std::vector<float> scales = decode_to_float(s.scale, s.scale_dtype);
  if (scales.size() == 1) scales.assign(static_cast<size_t>(s.n), scales[0]);
  for (size_t i = 0; i < scales.size(); ++i) {
    SS_REQUIRE_T(FormatError, std::isfinite(scales[i]) && scales[i] > 0,
                 "tensor '" << s.name << "': weight_scale[" << i << "] = " << scales[i]
                            << " is not a positive finite number");
  }
  return scales;
}

// The source weight as float, dequantised when it is int8 / fp8.
std::vector<float> source_as_float(const LinearSource& s, int threads) {
  std::vector<float> w = decode_to_float(s.weight, s.dtype);
  if (is_quantized(s.dtype)) {
    const std::vector<float> scales = source_scales(s);
    parallel_rows(s.n, s.k, threads, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < s.k; ++c) w[static_cast<size_t>(r * s.k + c)] *= scales[r];
    });
  }
  return w;
}

template <class T>
void prune_or_check(std::vector<T>& w, const LinearSource& s, Sparsity sparsity, bool assume_pruned,
                    int threads) {
  if (assume_pruned) {
    // Report the first violation in row-major order, as check_pattern would.
    check_pattern<T>(std::span<const T>(w), s.n, s.k, sparsity, "tensor '" + s.name + "'");
    return;
  }
  parallel_rows(s.n, s.k, threads, [&](int64_t r0, int64_t r1) {
    prune_magnitude<T>(std::span<T>(w).subspan(static_cast<size_t>(r0 * s.k),
                                               static_cast<size_t>((r1 - r0) * s.k)),
                       r1 - r0, s.k, sparsity);
  });
}

}  // namespace

PreparedLinear prepare_linear(const LinearSource& s, Sparsity sparsity, DType precision,
                              bool assume_pruned, int threads) {
  SS_REQUIRE(s.n > 0 && s.k > 0,
             "tensor '" << s.name << "': empty weight [" << s.n << ", " << s.k << "]");
  SS_REQUIRE_T(FormatError,
               static_cast<int64_t>(s.weight.size()) == s.n * s.k * dtype_size(s.dtype),
               "tensor '" << s.name << "': " << s.weight.size() << " bytes for a "
                          << dtype_name(s.dtype) << " weight [" << s.n << ", " << s.k << "]");
  SS_REQUIRE_T(NotSupportedError, s.dtype != DType::kI32,
               "tensor '" << s.name << "': int32 weights are not supported (packed formats)");
  SS_REQUIRE_T(
      NotSupportedError,
      precision == DType::kI8 || precision == DType::kFP8E4M3 || precision == DType::kBF16,
      "output precision " << dtype_name(precision) << " is not supported: use int8, fp8 or bf16");
  if (s.dtype == precision && precision != DType::kBF16) {
    PreparedLinear p = weight_codes_from(precision, s.weight.data(), s.n, s.k, source_scales(s));
    if (precision == DType::kI8)
      prune_or_check(p.int8_codes, s, sparsity, assume_pruned, threads);
    else
      prune_or_check(p.fp8_codes, s, sparsity, assume_pruned, threads);
    return p;
  }
  if (precision == DType::kBF16) {
    PreparedLinear p =
        s.dtype == DType::kBF16
            ? weight_codes_from(DType::kBF16, s.weight.data(), s.n, s.k)
            : quantize_weight(source_as_float(s, threads), s.n, s.k, DType::kBF16, threads);
    prune_or_check(p.bf16_values, s, sparsity, assume_pruned, threads);
    return p;
  }
  std::vector<float> w = source_as_float(s, threads);
  prune_or_check(w, s, sparsity, assume_pruned, threads);
  return quantize_weight(w, s.n, s.k, precision, threads);
}

}  // namespace slidesparse
