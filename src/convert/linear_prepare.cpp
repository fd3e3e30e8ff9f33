// Pruning, quantisation and sliding of one linear weight, split over rows for the 2 cores of a
// development machine. All arithmetic is the CPU core's (prune.h, quant.h, slide.h).
#include "convert/linear_prepare.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "io/tensor_data.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
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

template <class Code, class QuantFn>
void quantize_parallel(const std::vector<float>& w, int64_t n, int64_t k, int threads,
                       std::vector<Code>& codes, std::vector<float>& scales, QuantFn quant) {
  codes.resize(static_cast<size_t>(n * k));
  scales.resize(static_cast<size_t>(n));
  parallel_rows(n, k, threads, [&](int64_t r0, int64_t r1) {
    auto q = quant(std::span<const float>(w).subspan(static_cast<size_t>(r0 * k),
                                                     static_cast<size_t>((r1 - r0) * k)),
                   r1 - r0, k);
    std::memcpy(codes.data() + r0 * k, q.codes.data(), q.codes.size() * sizeof(Code));
    std::memcpy(scales.data() + r0, q.scales.data(), q.scales.size() * sizeof(float));
  });
}

template <class T>
std::vector<std::byte> slide_rows(const std::vector<T>& w, int64_t n, int64_t k, Sparsity sparsity,
                                  int threads) {
  const int64_t k_slide = sparsity.k_slide(k);
  std::vector<std::byte> out(static_cast<size_t>(n * k_slide) * sizeof(T));
  parallel_rows(n, k, threads, [&](int64_t r0, int64_t r1) {
    std::vector<T> part =
        slide_weights<T>(std::span<const T>(w).subspan(static_cast<size_t>(r0 * k),
                                                       static_cast<size_t>((r1 - r0) * k)),
                         r1 - r0, k, sparsity);
    std::memcpy(out.data() + static_cast<size_t>(r0 * k_slide) * sizeof(T), part.data(),
                part.size() * sizeof(T));
  });
  return out;
}

}  // namespace

void parallel_rows(int64_t rows, int64_t cols, int threads,
                   const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  constexpr int64_t kMinElementsPerThread = 1 << 18;
  const int64_t by_work =
      std::max<int64_t>(1, rows * std::max<int64_t>(cols, 1) / kMinElementsPerThread);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>({threads, rows, by_work}));
  if (chunks == 1) {
    fn(0, rows);
    return;
  }
  std::exception_ptr first_error;
  std::mutex mutex;
  std::vector<std::jthread> workers;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = rows * c / chunks;
    const int64_t r1 = rows * (c + 1) / chunks;
    workers.emplace_back([&, r0, r1] {
      try {
        fn(r0, r1);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!first_error) first_error = std::current_exception();
      }
    });
  }
  workers.clear();  // joins
  if (first_error) std::rethrow_exception(first_error);
}

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
  PreparedLinear p;
  p.precision = precision;
  p.n = s.n;
  p.k = s.k;
  if (precision == DType::kI8 && s.dtype == DType::kI8) {
    p.int8_codes = copy_values<int8_t>(s.weight);
    p.scale_per_channel = source_scales(s);
    prune_or_check(p.int8_codes, s, sparsity, assume_pruned, threads);
    return p;
  }
  if (precision == DType::kFP8E4M3 && s.dtype == DType::kFP8E4M3) {
    p.fp8_codes = copy_values<fp8_e4m3_t>(s.weight);
    p.scale_per_channel = source_scales(s);
    prune_or_check(p.fp8_codes, s, sparsity, assume_pruned, threads);
    return p;
  }
  if (precision == DType::kBF16) {
    if (s.dtype == DType::kBF16) {
      p.bf16_values = copy_values<bf16_t>(s.weight);
    } else {
      const std::vector<float> w = source_as_float(s, threads);
      p.bf16_values.resize(w.size());
      parallel_rows(s.n, s.k, threads, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0 * s.k; i < r1 * s.k; ++i)
          p.bf16_values[static_cast<size_t>(i)] = bf16_from_float(w[static_cast<size_t>(i)]);
      });
    }
    prune_or_check(p.bf16_values, s, sparsity, assume_pruned, threads);
    return p;
  }
  SS_REQUIRE_T(
      NotSupportedError, precision == DType::kI8 || precision == DType::kFP8E4M3,
      "output precision " << dtype_name(precision) << " is not supported: use int8, fp8 or bf16");
  std::vector<float> w = source_as_float(s, threads);
  prune_or_check(w, s, sparsity, assume_pruned, threads);
  if (precision == DType::kI8) {
    quantize_parallel(
        w, s.n, s.k, threads, p.int8_codes, p.scale_per_channel,
        [](std::span<const float> v, int64_t r, int64_t c) { return quantize_rows_int8(v, r, c); });
  } else {
    quantize_parallel(
        w, s.n, s.k, threads, p.fp8_codes, p.scale_per_channel,
        [](std::span<const float> v, int64_t r, int64_t c) { return quantize_rows_e4m3(v, r, c); });
  }
  return p;
}

std::vector<std::byte> slide_prepared(const PreparedLinear& p, Sparsity sparsity, int threads) {
  switch (p.precision) {
    case DType::kI8:
      return slide_rows(p.int8_codes, p.n, p.k, sparsity, threads);
    case DType::kFP8E4M3:
      return slide_rows(p.fp8_codes, p.n, p.k, sparsity, threads);
    case DType::kBF16:
      return slide_rows(p.bf16_values, p.n, p.k, sparsity, threads);
    default:
      throw NotSupportedError("slide_prepared: precision " + std::string(dtype_name(p.precision)) +
                              " is not supported");
  }
}

}  // namespace slidesparse
