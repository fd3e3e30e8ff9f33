// GPU weight preparation (kernels/weight_prep.h) against core, bit for bit, on fresh random data:
// pruning (every dtype, ties and NaN included, short tail blocks), per-channel quantisation
// (f32 / bf16 -> int8 / e4m3; a zero row, NaN and huge values) and sliding (every dtype, L from 4
// to 16, odd K), and a weight that breaks the pattern is a PatternError naming its first block.
#include "kernels/weight_prep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/kernel_test_util.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

struct Shape {
  int64_t rows, cols;
};
const Shape kShapes[] = {{1, 1}, {17, 33}, {33, 1025}, {5, 250}};

// Random host values of T with ties: values come from a small set, with sign and a few NaN for
// the float formats (NaN sorts as the largest magnitude).
template <class T>
std::vector<T> random_weight(int64_t count, std::mt19937_64& rng, bool with_nan) {
  std::uniform_int_distribution<int> pick(-6, 6);
  std::uniform_int_distribution<int> rare(0, 97);
  std::vector<T> w(static_cast<size_t>(count));
  for (auto& e : w) {
    const float v = static_cast<float>(pick(rng)) * 0.25f;
    const bool nan = with_nan && rare(rng) == 0;
    if constexpr (std::is_same_v<T, float>) {
      e = nan ? std::numeric_limits<float>::quiet_NaN() : v;
    } else if constexpr (std::is_same_v<T, bf16_t>) {
      e = nan ? bf16_t{0x7FC0} : bf16_from_float(v);
    } else if constexpr (std::is_same_v<T, fp8_e4m3_t>) {
      e = nan ? fp8_e4m3_t{0x7F} : e4m3_from_float(v);
    } else {
      e = static_cast<int8_t>(pick(rng) * 20);
    }
  }
  return w;
}

template <class T>
DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::kF32;
  if constexpr (std::is_same_v<T, bf16_t>) return DType::kBF16;
  if constexpr (std::is_same_v<T, fp8_e4m3_t>) return DType::kFP8E4M3;
  return DType::kI8;
}

template <class T>
std::vector<uint8_t> download_bytes(const DeviceBuffer& b, size_t count) {
  std::vector<uint8_t> out(count * sizeof(T));
  SS_CUDA_CHECK(cudaMemcpy(out.data(), b.get(), out.size(), cudaMemcpyDeviceToHost));
  return out;
}

template <class T>
void check_prune(const Shape& s, int block) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("prune " + std::string(dtype_name(dtype_of<T>())) + " " + std::to_string(s.rows) +
               "x" + std::to_string(s.cols) + " L=" + std::to_string(block) +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<T> w = random_weight<T>(s.rows * s.cols, rng, true);
  const Sparsity sp = Sparsity::from_block(block);
  DeviceBuffer d = test::upload(test::as_bytes(w));
  prune_magnitude<T>(std::span<T>(w), s.rows, s.cols, sp);
  launch_prune_magnitude(d.get(), dtype_of<T>(), s.rows, s.cols, sp, nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  test::expect_bytes_equal(download_bytes<T>(d, w.size()), test::as_bytes(w),
                           s.cols * static_cast<int64_t>(sizeof(T)), "pruned weight");
}

TEST(WeightPrep, PruneMatchesCore) {
  SS_SKIP_WITHOUT_GPU();
  for (const Shape& s : kShapes)
    for (int block : {4, 6, 8, 10, 16}) {
      check_prune<float>(s, block);
      check_prune<bf16_t>(s, block);
      check_prune<int8_t>(s, block);
      check_prune<fp8_e4m3_t>(s, block);
    }
}

void check_quantize(DType in, DType out, const Shape& s) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("quantize " + std::string(dtype_name(in)) + "->" + std::string(dtype_name(out)) +
               " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-4.0f, 4.0f);
  std::vector<float> values(static_cast<size_t>(s.rows * s.cols));
  for (int64_t r = 0; r < s.rows; ++r) {
    const float magnitude = std::pow(10.0f, exponent(rng));
    for (int64_t c = 0; c < s.cols; ++c)
      values[static_cast<size_t>(r * s.cols + c)] = r == 2 ? 0.0f : normal(rng) * magnitude;
  }
  if (s.rows > 4 && s.cols > 3) values[static_cast<size_t>(4 * s.cols + 3)] = NAN;
  std::vector<uint8_t> input;
  if (in == DType::kBF16) {
    const auto b = to_bf16_vector(values);
    values = to_float_vector(b);  // the exact bf16 values the CPU path quantises
    input = test::as_bytes(b);
  } else {
    input = test::as_bytes(values);
  }
  std::vector<uint8_t> want_codes;
  std::vector<float> want_scales;
  if (out == DType::kI8) {
    auto q = quantize_rows_int8(values, s.rows, s.cols);
    want_codes = test::as_bytes(q.codes);
    want_scales = q.scales;
  } else {
    auto q = quantize_rows_e4m3(values, s.rows, s.cols);
    want_codes = test::as_bytes(q.codes);
    want_scales = q.scales;
  }
  const DeviceBuffer d_in = test::upload(input);
  test::GuardedBuffer codes(want_codes.size());
  test::GuardedBuffer scales(want_scales.size() * sizeof(float));
  launch_quantize_rows(d_in.get(), in, s.rows, s.cols, out, codes.get(), scales.as<float>(),
                       nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  test::expect_bytes_equal(codes.download(), want_codes, s.cols, "codes");
  test::expect_bytes_equal(scales.download(), test::as_bytes(want_scales), 4, "scales");
  EXPECT_TRUE(codes.sentinel_intact());
  EXPECT_TRUE(scales.sentinel_intact());
}

TEST(WeightPrep, QuantizeRowsMatchesCore) {
  SS_SKIP_WITHOUT_GPU();
  for (DType in : {DType::kF32, DType::kBF16})
    for (DType out : {DType::kI8, DType::kFP8E4M3})
      for (const Shape& s : kShapes) check_quantize(in, out, s);
}

template <class T>
void check_slide(const Shape& s, int block) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("slide " + std::string(dtype_name(dtype_of<T>())) + " " + std::to_string(s.rows) +
               "x" + std::to_string(s.cols) + " L=" + std::to_string(block) +
               " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const Sparsity sp = Sparsity::from_block(block);
  std::vector<T> w = random_weight<T>(s.rows * s.cols, rng, false);
  prune_magnitude<T>(std::span<T>(w), s.rows, s.cols, sp);
  const std::vector<T> want = slide_weights<T>(w, s.rows, s.cols, sp);
  const DeviceBuffer d = test::upload(test::as_bytes(w));
  test::GuardedBuffer out(want.size() * sizeof(T));
  slide_weights_on_gpu(d.get(), dtype_of<T>(), s.rows, s.cols, sp, out.get(), nullptr, "test");
  test::expect_bytes_equal(out.download(), test::as_bytes(want),
                           sp.k_slide(s.cols) * static_cast<int64_t>(sizeof(T)), "W'");
  EXPECT_TRUE(out.sentinel_intact());
}

TEST(WeightPrep, SlideMatchesCore) {
  SS_SKIP_WITHOUT_GPU();
  for (const Shape& s : kShapes)
    for (int block : {4, 6, 8, 10, 12, 16}) {
      check_slide<float>(s, block);
      check_slide<bf16_t>(s, block);
      check_slide<int8_t>(s, block);
      check_slide<fp8_e4m3_t>(s, block);
    }
}

TEST(WeightPrep, WeightBreakingThePatternIsAPatternError) {
  SS_SKIP_WITHOUT_GPU();
  const int64_t rows = 40, k = 100;
  const Sparsity sp = Sparsity::parse("2:8");
  std::vector<int8_t> w(static_cast<size_t>(rows * k), 0);  // all zero: valid
  // Row 7, block 3 holds 7 non-zeros; row 20, block 1 too (the first one must be reported).
  for (int64_t c = 24; c < 31; ++c) w[static_cast<size_t>(7 * k + c)] = 5;
  for (int64_t c = 8; c < 15; ++c) w[static_cast<size_t>(20 * k + c)] = 5;
  const DeviceBuffer d = test::upload(test::as_bytes(w));
  DeviceBuffer out(static_cast<size_t>(rows * sp.k_slide(k)));
  try {
    slide_weights_on_gpu(d.get(), DType::kI8, rows, k, sp, out.get(), nullptr, "layer.down");
    ADD_FAILURE() << "no PatternError";
  } catch (const PatternError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("layer.down"), std::string::npos) << what;
    EXPECT_NE(what.find("row 7, block 3"), std::string::npos) << what;
    EXPECT_NE(what.find("7 non-zeros"), std::string::npos) << what;
  }
  // Unsupported dtypes are refused with the reason.
  EXPECT_THROW(launch_prune_magnitude(d.get(), DType::kI32, rows, k, sp, nullptr),
               NotSupportedError);
  EXPECT_THROW(
      launch_quantize_rows(d.get(), DType::kI8, rows, k, DType::kI8, out.get(), nullptr, nullptr),
      NotSupportedError);
}

}  // namespace
}  // namespace slidesparse
