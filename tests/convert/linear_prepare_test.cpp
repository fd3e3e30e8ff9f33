// prepare_linear / slide_weight on their own: threaded and single-threaded runs agree bit for
// bit and bad sources are refused by name.
#include "convert/linear_prepare.h"

#include <gtest/gtest.h>

#include <random>

#include "io/tensor_data.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

std::vector<std::byte> random_bf16(int64_t n, int64_t k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> v(static_cast<size_t>(n * k));
  for (auto& x : v) x = d(rng);
  return encode_from_float(v, DType::kBF16);
}

TEST(PrepareLinear, ThreadedEqualsSingleThreaded) {
  const int64_t n = 512, k = 1100;  // 2 chunks; K not a multiple of 8 or 32
  const std::vector<std::byte> w = random_bf16(n, k, 3);
  LinearSource src{"big", DType::kBF16, n, k, w};
  for (DType precision : {DType::kI8, DType::kFP8E4M3, DType::kBF16}) {
    const Sparsity sp = Sparsity::from_block(8);
    PreparedLinear a = prepare_linear(src, sp, precision, false, 1);
    PreparedLinear b = prepare_linear(src, sp, precision, false, 2);
    EXPECT_EQ(a.int8_codes, b.int8_codes);
    EXPECT_EQ(a.fp8_codes, b.fp8_codes);
    EXPECT_EQ(a.bf16_values, b.bf16_values);
    EXPECT_EQ(a.scale_per_channel, b.scale_per_channel);
    const WeightCodes slid_a = slide_weight(a, sp, 1), slid_b = slide_weight(b, sp, 2);
    EXPECT_EQ(slid_a.int8_codes, slid_b.int8_codes);
    EXPECT_EQ(slid_a.fp8_codes, slid_b.fp8_codes);
    EXPECT_EQ(slid_a.bf16_values, slid_b.bf16_values);
    EXPECT_EQ(slid_a.cols, sp.k_slide(k));
    if (precision == DType::kI8) {
      EXPECT_FALSE(find_pattern_violation<int8_t>(a.int8_codes, n, k, sp).has_value());
      EXPECT_EQ(a.scale_per_channel.size(), static_cast<size_t>(n));
    }
  }
}

TEST(PrepareLinear, AssumePrunedNamesTensorRowAndBlock) {
  const int64_t n = 4, k = 16;
  std::vector<float> v(static_cast<size_t>(n * k), 1.0f);
  std::vector<float> pruned = v;
  prune_magnitude<float>(pruned, n, k, Sparsity::from_block(8));
  pruned[2 * 16 + 9] = 5.0f;  // row 2, block 1 gets a 7th non-zero
  const auto bytes = encode_from_float(pruned, DType::kF32);
  LinearSource src{"model.layers.3.mlp.up_proj.weight", DType::kF32, n, k, bytes};
  try {
    prepare_linear(src, Sparsity::from_block(8), DType::kI8, true, 2);
    FAIL();
  } catch (const PatternError& e) {
    EXPECT_EQ(e.row(), 2);
    EXPECT_EQ(e.block(), 1);
    EXPECT_NE(std::string(e.what()).find("model.layers.3.mlp.up_proj.weight"), std::string::npos);
  }
}

TEST(PrepareLinear, BadScalesAndSizesAreRefused) {
  const int64_t n = 4, k = 8;
  std::vector<std::byte> codes(static_cast<size_t>(n * k), std::byte{3});
  std::vector<float> scales = {1.0f, 1.0f, 0.0f, 1.0f};
  LinearSource src{"w", DType::kI8, n, k, codes};
  src.scale_dtype = DType::kF32;
  src.scale_count = 4;
  src.scale = std::as_bytes(std::span(scales));
  EXPECT_THROW(prepare_linear(src, Sparsity::from_block(4), DType::kI8, false, 1), FormatError);
  src.scale_count = 3;
  src.scale = std::as_bytes(std::span(scales).first(3));
  EXPECT_THROW(prepare_linear(src, Sparsity::from_block(4), DType::kI8, false, 1), FormatError);
  src.weight = std::span(codes).first(10);
  EXPECT_THROW(prepare_linear(src, Sparsity::from_block(4), DType::kI8, false, 1), FormatError);
  // Per-tensor scale broadcasts.
  std::vector<float> one = {0.5f};
  src.weight = codes;
  src.scale = std::as_bytes(std::span(one));
  src.scale_count = 1;
  PreparedLinear p = prepare_linear(src, Sparsity::from_block(4), DType::kBF16, false, 1);
  EXPECT_EQ(to_float(p.bf16_values[1]), 0.0f);  // equal magnitudes: the lower columns go
  EXPECT_EQ(to_float(p.bf16_values[2]), 1.5f);
}

}  // namespace
}  // namespace slidesparse
