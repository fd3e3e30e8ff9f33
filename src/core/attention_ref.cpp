// Grouped-query attention reference (attention_ref.h): one query row at a time, double sums.
#include "slidesparse/core/attention_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/shape_check.h"
#include "slidesparse/error.h"

namespace slidesparse {

std::vector<float> attention_ref(std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v, int64_t t, int64_t s, int64_t hq,
                                 int64_t hkv, int64_t d, float sm_scale, bool causal) {
  SS_REQUIRE(t >= 1 && s >= t && hq >= 1 && hkv >= 1 && d >= 1 && hq % hkv == 0,
             "attention_ref: bad sizes t " << t << ", s " << s << ", hq " << hq << ", hkv " << hkv
                                           << ", d " << d
                                           << " (need 1 <= t <= s, hq a multiple of hkv)");
  detail::require_matrix("attention_ref", "q", q.size(), t, hq * d);
  detail::require_matrix("attention_ref", "k", k.size(), s, hkv * d);
  detail::require_matrix("attention_ref", "v", v.size(), s, hkv * d);
  const int64_t group = hq / hkv;
  std::vector<float> out(static_cast<size_t>(t * hq * d));
  std::vector<double> scores(static_cast<size_t>(s));
  std::vector<double> acc(static_cast<size_t>(d));
  for (int64_t i = 0; i < t; ++i) {
    const int64_t visible = causal ? s - t + i + 1 : s;
    for (int64_t h = 0; h < hq; ++h) {
      const int64_t kv_head = h / group;
      const float* qh = q.data() + (i * hq + h) * d;
      double max_score = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < visible; ++j) {
        const float* kh = k.data() + (j * hkv + kv_head) * d;
        double dot = 0.0;
        for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(qh[c]) * kh[c];
        scores[static_cast<size_t>(j)] = dot * static_cast<double>(sm_scale);
        max_score = std::max(max_score, scores[static_cast<size_t>(j)]);
      }
      double denom = 0.0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < visible; ++j) {
        const double p = std::exp(scores[static_cast<size_t>(j)] - max_score);
        denom += p;
        const float* vh = v.data() + (j * hkv + kv_head) * d;
        for (int64_t c = 0; c < d; ++c) acc[static_cast<size_t>(c)] += p * vh[c];
      }
      float* oh = out.data() + (i * hq + h) * d;
      for (int64_t c = 0; c < d; ++c)
        oh[c] = static_cast<float>(acc[static_cast<size_t>(c)] / denom);
    }
  }
  return out;
}

}  // namespace slidesparse
