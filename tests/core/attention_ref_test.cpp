// Attention reference: one key returns v, GQA head mapping, the causal window of each query,
// known softmax weights, queries at the end of a longer key sequence.
#include "slidesparse/core/attention_ref.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/random_data.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(AttentionRef, OneKeyGivesV) {
  const int64_t d = 16;
  const auto q = test::random_floats(3 * d, 1);
  const auto k = test::random_floats(d, 2);
  const auto v = test::random_floats(d, 3);
  const auto out = attention_ref(q, k, v, 1, 1, 3, 1, d, 0.25f, true);
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t c = 0; c < d; ++c) EXPECT_EQ(out[h * d + c], v[c]);
}

TEST(AttentionRef, GroupedQueryHeadsReadTheirKvHead) {
  // hq 6, hkv 2 (group 3): heads 0-2 read kv head 0, heads 3-5 kv head 1; one key.
  const int64_t d = 4;
  const auto q = test::random_floats(6 * d, 4);
  const auto k = test::random_floats(2 * d, 5);
  const auto v = test::random_floats(2 * d, 6);
  const auto out = attention_ref(q, k, v, 1, 1, 6, 2, d, 1.0f, false);
  for (int64_t h = 0; h < 6; ++h)
    for (int64_t c = 0; c < d; ++c) EXPECT_EQ(out[h * d + c], v[(h / 3) * d + c]) << h;
}

TEST(AttentionRef, KnownSoftmaxWeights) {
  // q.k0 = 0, q.k1 = ln 3 / scale: weights 1/4 and 3/4.
  const float scale = 0.5f;
  const float l = float(std::log(3.0) / scale);
  const std::vector<float> q = {1, 0};
  const std::vector<float> k = {0, 5, l, -2};
  const std::vector<float> v = {4, 8, 0, -4};
  const auto out = attention_ref(q, k, v, 1, 2, 1, 1, 2, scale, true);
  EXPECT_NEAR(out[0], 1.0f, 1e-6);
  EXPECT_NEAR(out[1], -1.0f, 1e-6);
}

TEST(AttentionRef, CausalWindowPerQuery) {
  // t = s = 4, q = 0: uniform weights over the visible keys, so row i is the mean of v[0..i].
  const int64_t s = 4, d = 3;
  const std::vector<float> q(s * d, 0.0f);
  const auto k = test::random_floats(s * d, 7);
  const auto v = test::random_floats(s * d, 8);
  const auto causal = attention_ref(q, k, v, s, s, 1, 1, d, 1.0f, true);
  const auto full = attention_ref(q, k, v, s, s, 1, 1, d, 1.0f, false);
  for (int64_t i = 0; i < s; ++i)
    for (int64_t c = 0; c < d; ++c) {
      double mean = 0, mean_all = 0;
      for (int64_t j = 0; j <= i; ++j) mean += v[j * d + c];
      for (int64_t j = 0; j < s; ++j) mean_all += v[j * d + c];
      EXPECT_NEAR(causal[i * d + c], mean / (i + 1), 1e-6);
      EXPECT_NEAR(full[i * d + c], mean_all / s, 1e-6);
    }
  EXPECT_EQ(causal[0], v[0]);
}

TEST(AttentionRef, QueriesAreTheLastTokens) {
  // Two queries over five keys equal rows 3 and 4 of the full causal attention.
  const int64_t s = 5, hq = 4, hkv = 2, d = 8;
  const auto q = test::random_floats(s * hq * d, 9);
  const auto k = test::random_floats(s * hkv * d, 10);
  const auto v = test::random_floats(s * hkv * d, 11);
  const auto full = attention_ref(q, k, v, s, s, hq, hkv, d, 0.3f, true);
  const auto tail =
      attention_ref(std::span(q).subspan(3 * hq * d), k, v, 2, s, hq, hkv, d, 0.3f, true);
  for (int64_t i = 0; i < 2 * hq * d; ++i) EXPECT_EQ(tail[i], full[3 * hq * d + i]);
  // Query 3 must not see key 4: changing v[4] leaves it alone.
  auto v2 = v;
  for (int64_t c = 0; c < hkv * d; ++c) v2[4 * hkv * d + c] += 1.0f;
  const auto tail2 =
      attention_ref(std::span(q).subspan(3 * hq * d), k, v2, 2, s, hq, hkv, d, 0.3f, true);
  for (int64_t i = 0; i < hq * d; ++i) EXPECT_EQ(tail2[i], tail[i]);
  EXPECT_NE(tail2[hq * d], tail[hq * d]);
}

TEST(AttentionRef, BadShapesThrow) {
  const std::vector<float> x(8, 1.0f);
  EXPECT_THROW(attention_ref(x, x, x, 2, 1, 1, 1, 4, 1.0f, true), Error);  // t > s
  EXPECT_THROW(attention_ref(x, x, x, 1, 1, 3, 2, 4, 1.0f, true), Error);  // hq % hkv
  EXPECT_THROW(attention_ref(x, x, x, 1, 1, 1, 1, 4, 1.0f, true), Error);  // sizes
}

}  // namespace
}  // namespace slidesparse
