// Element-wise and row-wise op references (ops_ref.h). Compiled with -ffp-contract=off like the
// rest of core: every float operation rounds on its own, as the GPU's __fmul_rn / __fadd_rn do.
#include "slidesparse/core/ops_ref.h"

#include <cmath>
#include <string>

#include "core/shape_check.h"
#include "slidesparse/error.h"

namespace slidesparse {

std::vector<bf16_t> rms_norm_ref(std::span<const bf16_t> x, int64_t m, int64_t k,
                                 std::span<const bf16_t> weight, float eps) {
  detail::require_matrix("rms_norm_ref", "x", x.size(), m, k);
  detail::require_vector("rms_norm_ref", "weight", weight.size(), k, false);
  SS_REQUIRE(eps >= 0.0f && std::isfinite(eps),
             "rms_norm_ref: eps must be finite and >= 0 (got " << eps << ")");
  std::vector<bf16_t> y(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i) {
    const bf16_t* row = x.data() + i * k;
    double sum_sq = 0.0;
    for (int64_t c = 0; c < k; ++c) {
      const double v = to_float(row[c]);
      sum_sq += v * v;
    }
    const float mean = static_cast<float>(sum_sq / static_cast<double>(k));
    const float r = 1.0f / std::sqrt(mean + eps);
    bf16_t* out = y.data() + i * k;
    for (int64_t c = 0; c < k; ++c) {
      const bf16_t n = bf16_from_float(to_float(row[c]) * r);
      out[c] = bf16_from_float(to_float(n) * to_float(weight[static_cast<size_t>(c)]));
    }
  }
  return y;
}

std::vector<bf16_t> silu_mul_ref(std::span<const bf16_t> gate_up, int64_t m, int64_t inter) {
  SS_REQUIRE(inter >= 1, "silu_mul_ref: inter must be >= 1 (got " << inter << ")");
  detail::require_matrix("silu_mul_ref", "gate_up", gate_up.size(), m, 2 * inter);
  std::vector<bf16_t> y(static_cast<size_t>(m * inter));
  for (int64_t i = 0; i < m; ++i) {
    const bf16_t* gate = gate_up.data() + i * 2 * inter;
    const bf16_t* up = gate + inter;
    for (int64_t c = 0; c < inter; ++c) {
      const float g = to_float(gate[c]);
      const float silu = g / (1.0f + std::exp(-g));
      y[static_cast<size_t>(i * inter + c)] = bf16_from_float(silu * to_float(up[c]));
    }
  }
  return y;
}

std::vector<bf16_t> embedding_ref(std::span<const bf16_t> table, int64_t vocab, int64_t hidden,
                                  std::span<const int32_t> tokens) {
  detail::require_matrix("embedding_ref", "table", table.size(), vocab, hidden);
  const int64_t m = static_cast<int64_t>(tokens.size());
  std::vector<bf16_t> out(static_cast<size_t>(m * hidden));
  const bf16_t nan = bf16_from_float(std::nanf(""));
  for (int64_t i = 0; i < m; ++i) {
    const int64_t token = tokens[static_cast<size_t>(i)];
    bf16_t* dst = out.data() + i * hidden;
    if (token < 0 || token >= vocab) {
      for (int64_t c = 0; c < hidden; ++c) dst[c] = nan;
      continue;
    }
    const bf16_t* src = table.data() + token * hidden;
    for (int64_t c = 0; c < hidden; ++c) dst[c] = src[c];
  }
  return out;
}

std::vector<int32_t> argmax_ref(std::span<const bf16_t> logits, int64_t m, int64_t vocab) {
  detail::require_matrix("argmax_ref", "logits", logits.size(), m, vocab);
  SS_REQUIRE(vocab <= INT32_MAX, "argmax_ref: vocab " << vocab << " does not fit int32 ids");
  std::vector<int32_t> out(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    const bf16_t* row = logits.data() + i * vocab;
    int64_t best = 0;
    float best_value = NAN;
    for (int64_t c = 0; c < vocab; ++c) {
      const float v = to_float(row[c]);
      if (std::isnan(v)) continue;
      if (std::isnan(best_value) || v > best_value) {  // strict: ties keep the lower index
        best = c;
        best_value = v;
      }
    }
    out[static_cast<size_t>(i)] = static_cast<int32_t>(best);
  }
  return out;
}

std::vector<bf16_t> add_residual_ref(std::span<const float> y, std::span<const bf16_t> residual) {
  SS_REQUIRE(y.size() == residual.size(), "add_residual_ref: y holds "
                                              << y.size() << " elements but residual holds "
                                              << residual.size());
  std::vector<bf16_t> out(y.size());
  for (size_t i = 0; i < y.size(); ++i) out[i] = bf16_from_float(to_float(residual[i]) + y[i]);
  return out;
}

}  // namespace slidesparse
