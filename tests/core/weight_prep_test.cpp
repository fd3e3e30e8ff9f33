// The shared host weight preparation (core/weight_prep.h): quantise_weight is core/quant.h's
// per-row quantisation (or bf16 rounding), slide_weight is core/slide.h's sliding, and both give
// the same bits in row chunks on several threads; parallel_rows covers each row once.
#include "core/weight_prep.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

#include "core/parallel_rows.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

std::vector<float> random_pruned(int64_t n, int64_t k, Sparsity sparsity, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (float& v : w) v = d(rng);
  prune_magnitude<float>(w, n, k, sparsity);
  return w;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

TEST(ParallelRows, CoversEveryRowOnceAndRethrows) {
  std::vector<std::atomic<int>> seen(1000);
  parallel_rows(1000, 1 << 20, 2, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) seen[static_cast<size_t>(r)]++;
  });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
  EXPECT_THROW(parallel_rows(1000, 1 << 20, 2,
                             [](int64_t r0, int64_t) {
                               if (r0 > 0) throw PatternError("late chunk", r0, 0);
                             }),
               PatternError);
}

TEST(WeightPrep, QuantizeIsTheRowQuantisationOfCoreQuant) {
  const int64_t n = 37, k = 100;
  const std::vector<float> w = random_pruned(n, k, Sparsity::from_block(8), 1);
  const WeightCodes i8 = quantize_weight(w, n, k, DType::kI8);
  const auto ref_i8 = quantize_rows_int8(w, n, k);
  EXPECT_EQ(i8.dtype, DType::kI8);
  EXPECT_EQ(i8.n, n);
  EXPECT_EQ(i8.cols, k);
  EXPECT_EQ(i8.int8_codes, ref_i8.codes);
  EXPECT_EQ(i8.scale_per_channel, ref_i8.scales);
  EXPECT_EQ(i8.bytes().size(), static_cast<size_t>(n * k));

  const WeightCodes f8 = quantize_weight(w, n, k, DType::kFP8E4M3);
  const auto ref_f8 = quantize_rows_e4m3(w, n, k);
  EXPECT_TRUE(same_bits(f8.fp8_codes, ref_f8.codes));
  EXPECT_EQ(f8.scale_per_channel, ref_f8.scales);

  const WeightCodes b16 = quantize_weight(w, n, k, DType::kBF16);
  EXPECT_TRUE(same_bits(b16.bf16_values, to_bf16_vector(w)));
  EXPECT_TRUE(b16.scale_per_channel.empty());
  EXPECT_EQ(b16.bytes().size(), static_cast<size_t>(n * k) * 2);

  EXPECT_THROW(quantize_weight(w, n, k, DType::kF32), NotSupportedError);
  EXPECT_THROW(quantize_weight(w, n, k + 1, DType::kI8), Error);
}

TEST(WeightPrep, SlideIsCoreSlideWithScalesCarriedOver) {
  const int64_t n = 24, k = 96;
  const Sparsity sp = Sparsity::from_block(6);
  const std::vector<float> w = random_pruned(n, k, sp, 2);
  const WeightCodes q = quantize_weight(w, n, k, DType::kI8);
  const WeightCodes s = slide_weight(q, sp);
  EXPECT_EQ(s.cols, sp.k_slide(k));
  EXPECT_EQ(s.int8_codes, slide_weights<int8_t>(q.int8_codes, n, k, sp));
  EXPECT_EQ(s.scale_per_channel, q.scale_per_channel);
  const WeightCodes b = slide_weight(quantize_weight(w, n, k, DType::kBF16), sp);
  EXPECT_TRUE(same_bits(b.bf16_values, slide_weights<bf16_t>(to_bf16_vector(w), n, k, sp)));
}

TEST(WeightPrep, ThreadedRunsGiveTheSameBits) {
  const int64_t n = 600, k = 1000;  // big enough for parallel_rows to use two chunks
  const Sparsity sp = Sparsity::from_block(8);
  const std::vector<float> w = random_pruned(n, k, sp, 3);
  for (DType d : {DType::kI8, DType::kFP8E4M3, DType::kBF16}) {
    const WeightCodes one = quantize_weight(w, n, k, d, 1), two = quantize_weight(w, n, k, d, 2);
    EXPECT_TRUE(std::ranges::equal(one.bytes(), two.bytes())) << dtype_name(d);
    EXPECT_EQ(one.scale_per_channel, two.scale_per_channel) << dtype_name(d);
    EXPECT_TRUE(
        std::ranges::equal(slide_weight(one, sp, 1).bytes(), slide_weight(two, sp, 2).bytes()))
        << dtype_name(d);
  }
}

TEST(WeightPrep, ABrokenPatternNamesTheRowOfTheWholeWeight) {
  const int64_t n = 600, k = 1000;
  const Sparsity sp = Sparsity::from_block(8);
  std::vector<float> w = random_pruned(n, k, sp, 4);
  for (int64_t c = 8; c < 16; ++c) w[static_cast<size_t>(450 * k + c)] = 1.0f;  // row 450, block 1
  const WeightCodes q = quantize_weight(w, n, k, DType::kI8, 2);
  for (int threads : {1, 2}) {
    try {
      slide_weight(q, sp, threads);
      FAIL() << "expected PatternError";
    } catch (const PatternError& e) {
      EXPECT_EQ(e.row(), 450) << threads << " threads: " << e.what();
      EXPECT_EQ(e.block(), 1) << threads << " threads: " << e.what();
    }
  }
}

TEST(WeightPrep, ExistingCodesAreCopiedWithTheirScales) {
  const std::vector<int8_t> codes = {1, -2, 3, -4, 5, -6};
  const std::vector<float> scales = {0.5f, 0.25f};
  const WeightCodes c = weight_codes_from(DType::kI8, codes.data(), 2, 3, scales);
  EXPECT_EQ(c.int8_codes, codes);
  EXPECT_EQ(c.scale_per_channel, scales);
  EXPECT_EQ(c.cols, 3);
  EXPECT_THROW(weight_codes_from(DType::kI8, codes.data(), 2, 3), Error);  // scales missing
  EXPECT_THROW(weight_codes_from(DType::kBF16, codes.data(), 1, 3, scales), Error);
  EXPECT_THROW(weight_codes_from(DType::kI8, nullptr, 2, 3, scales), Error);
}

}  // namespace
}  // namespace slidesparse
