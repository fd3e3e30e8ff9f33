// Quantise / round per output channel, then slide (see weight_prep.h). Rows are independent, so
// the row chunks of parallel_rows give the bits of a single-threaded run.
#include "core/weight_prep.h"

#include <cstring>
#include <string>

#include "core/parallel_rows.h"
#include "core/shape_check.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

void require_compute_dtype(DType dtype, const char* function) {
  SS_REQUIRE_T(
      NotSupportedError, dtype == DType::kI8 || dtype == DType::kFP8E4M3 || dtype == DType::kBF16,
      function << ": dtype " << dtype_name(dtype) << " is not supported (int8, fp8 or bf16)");
}

template <class Code>
std::vector<Code>& values_of(WeightCodes& c) {
  if constexpr (std::is_same_v<Code, int8_t>)
    return c.int8_codes;
  else if constexpr (std::is_same_v<Code, fp8_e4m3_t>)
    return c.fp8_codes;
  else
    return c.bf16_values;
}

template <class Code>
const std::vector<Code>& values_of(const WeightCodes& c) {
  return values_of<Code>(const_cast<WeightCodes&>(c));
}

template <class Code, class QuantFn>
void quantize_into(std::span<const float> w, int64_t n, int64_t k, int threads, WeightCodes& out,
                   QuantFn quant) {
  std::vector<Code>& codes = values_of<Code>(out);
  if (threads <= 1) {
    auto q = quant(w, n, k);
    codes = std::move(q.codes);
    out.scale_per_channel = std::move(q.scales);
    return;
  }
  codes.resize(static_cast<size_t>(n * k));
  out.scale_per_channel.resize(static_cast<size_t>(n));
  parallel_rows(n, k, threads, [&](int64_t r0, int64_t r1) {
    auto q = quant(w.subspan(static_cast<size_t>(r0 * k), static_cast<size_t>((r1 - r0) * k)),
                   r1 - r0, k);
    std::memcpy(codes.data() + r0 * k, q.codes.data(), q.codes.size() * sizeof(Code));
    std::memcpy(out.scale_per_channel.data() + r0, q.scales.data(),
                q.scales.size() * sizeof(float));
  });
}

template <class T>
void slide_into(const WeightCodes& in, Sparsity sparsity, int threads, WeightCodes& out) {
  const std::span<const T> w(values_of<T>(in));
  const int64_t n = in.n, k = in.cols, k_slide = out.cols;
  std::vector<T>& slid = values_of<T>(out);
  if (threads <= 1) {
    slid = slide_weights<T>(w, n, k, sparsity);
    return;
  }
  slid.resize(static_cast<size_t>(n * k_slide));
  parallel_rows(n, k, threads, [&](int64_t r0, int64_t r1) {
    std::vector<T> part;
    try {
      part = slide_weights<T>(
          w.subspan(static_cast<size_t>(r0 * k), static_cast<size_t>((r1 - r0) * k)), r1 - r0, k,
          sparsity);
    } catch (const PatternError&) {
      // The chunk numbers its rows from 0: name the first violation of the whole weight instead.
      check_pattern<T>(w, n, k, sparsity, "slide_weights: weight");
      throw;
    }
    std::memcpy(slid.data() + r0 * k_slide, part.data(), part.size() * sizeof(T));
  });
}

}  // namespace

std::span<const std::byte> WeightCodes::bytes() const {
  switch (dtype) {
    case DType::kI8:
      return std::as_bytes(std::span(int8_codes));
    case DType::kFP8E4M3:
      return std::as_bytes(std::span(fp8_codes));
    case DType::kBF16:
      return std::as_bytes(std::span(bf16_values));
    default:
      throw NotSupportedError("WeightCodes: dtype " + std::string(dtype_name(dtype)) +
                              " is not supported");
  }
}

WeightCodes quantize_weight(std::span<const float> w, int64_t n, int64_t k, DType compute,
                            int threads) {
  require_compute_dtype(compute, "quantize_weight");
  detail::require_matrix("quantize_weight", "weight", w.size(), n, k);
  WeightCodes out;
  out.dtype = compute;
  out.n = n;
  out.cols = k;
  switch (compute) {
    case DType::kI8:
      quantize_into<int8_t>(w, n, k, threads, out,
                            [](std::span<const float> v, int64_t r, int64_t c) {
                              return quantize_rows_int8(v, r, c);
                            });
      break;
    case DType::kFP8E4M3:
      quantize_into<fp8_e4m3_t>(w, n, k, threads, out,
                                [](std::span<const float> v, int64_t r, int64_t c) {
                                  return quantize_rows_e4m3(v, r, c);
                                });
      break;
    default:  // kBF16: round each value, no scales
      out.bf16_values.resize(w.size());
      parallel_rows(n, k, threads, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0 * k; i < r1 * k; ++i)
          out.bf16_values[static_cast<size_t>(i)] = bf16_from_float(w[static_cast<size_t>(i)]);
      });
      break;
  }
  return out;
}

WeightCodes weight_codes_from(DType dtype, const void* data, int64_t n, int64_t cols,
                              std::span<const float> scale_per_channel) {
  require_compute_dtype(dtype, "weight_codes_from");
  const int64_t count = detail::checked_elements("weight_codes_from", "codes", n, cols);
  SS_REQUIRE(data != nullptr, "weight_codes_from: codes are null");
  const bool quantized = dtype != DType::kBF16;
  SS_REQUIRE(!quantized || static_cast<int64_t>(scale_per_channel.size()) == n,
             "weight_codes_from: " << dtype_name(dtype) << " codes need " << n
                                   << " per-channel scales, got " << scale_per_channel.size());
  SS_REQUIRE(quantized || scale_per_channel.empty(),
             "weight_codes_from: bf16 values take no per-channel scales");
  WeightCodes out;
  out.dtype = dtype;
  out.n = n;
  out.cols = cols;
  auto copy = [&](auto& values) {
    values.resize(static_cast<size_t>(count));
    std::memcpy(values.data(), data, values.size() * sizeof(values[0]));
  };
  switch (dtype) {
    case DType::kI8:
      copy(out.int8_codes);
      break;
    case DType::kFP8E4M3:
      copy(out.fp8_codes);
      break;
    default:
      copy(out.bf16_values);
      break;
  }
  out.scale_per_channel.assign(scale_per_channel.begin(), scale_per_channel.end());
  return out;
}

WeightCodes slide_weight(const WeightCodes& codes, Sparsity sparsity, int threads) {
  require_compute_dtype(codes.dtype, "slide_weight");
  WeightCodes out;
  out.dtype = codes.dtype;
  out.n = codes.n;
  out.cols = sparsity.k_slide(codes.cols);
  out.scale_per_channel = codes.scale_per_channel;
  switch (codes.dtype) {
    case DType::kI8:
      slide_into<int8_t>(codes, sparsity, threads, out);
      break;
    case DType::kFP8E4M3:
      slide_into<fp8_e4m3_t>(codes, sparsity, threads, out);
      break;
    default:
      slide_into<bf16_t>(codes, sparsity, threads, out);
      break;
  }
  return out;
}

}  // namespace slidesparse
