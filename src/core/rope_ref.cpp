// RoPE reference (rope_ref.h): HF's inverse-frequency formulas in double, the float angle table,
// and the rotate-half application. -ffp-contract=off keeps each float op rounded on its own.
#include "slidesparse/core/rope_ref.h"

#include <cmath>
#include <numbers>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

void require_head_dim(const char* function, int64_t head_dim) {
  SS_REQUIRE(head_dim >= 2 && head_dim % 2 == 0,
             function << ": head_dim must be even and >= 2 (got " << head_dim << ")");
}

std::string effective_type(const RopeParams& p) {
  if (!p.rope_type.empty()) return p.rope_type;
  return p.scaling ? "llama3" : "default";
}

}  // namespace

std::vector<float> rope_inv_freq(const RopeParams& p) {
  require_head_dim("rope_inv_freq", p.head_dim);
  SS_REQUIRE(std::isfinite(p.theta) && p.theta > 1.0,
             "rope_inv_freq: rope_theta must be finite and > 1 (got " << p.theta << ")");
  const std::string type = effective_type(p);
  SS_REQUIRE_T(
      NotSupportedError, type == "default" || type == "llama3",
      "rope_inv_freq: rope_type '" << type << "' is not supported (default and llama3 are)");
  SS_REQUIRE(type == "default" || p.scaling.has_value(),
             "rope_inv_freq: rope_type 'llama3' needs its rope_scaling parameters");
  SS_REQUIRE(type == "llama3" || !p.scaling.has_value(),
             "rope_inv_freq: llama3 rope_scaling given with rope_type '" << type << "'");

  const int64_t half = p.head_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const double exponent = static_cast<double>(2 * i) / static_cast<double>(p.head_dim);
    inv[static_cast<size_t>(i)] = 1.0 / std::pow(p.theta, exponent);
  }
  if (type == "llama3") {
    const Llama3RopeScaling& s = *p.scaling;
    SS_REQUIRE(s.factor > 0 && s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor &&
                   s.original_max_position_embeddings > 0,
               "rope_inv_freq: bad llama3 rope_scaling (factor "
                   << s.factor << ", low_freq_factor " << s.low_freq_factor << ", high_freq_factor "
                   << s.high_freq_factor << ", original_max_position_embeddings "
                   << s.original_max_position_embeddings
                   << "): need factor > 0, 0 < low < high, original > 0");
    const double old_context = static_cast<double>(s.original_max_position_embeddings);
    const double low_freq_wavelen = old_context / s.low_freq_factor;
    const double high_freq_wavelen = old_context / s.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen < high_freq_wavelen) continue;  // high frequencies stay
      if (wavelen > low_freq_wavelen) {           // low frequencies are slowed by `factor`
        f = f / s.factor;
        continue;
      }
      const double smooth =
          (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = (1.0 - smooth) * f / s.factor + smooth * f;
    }
  }
  std::vector<float> out(inv.size());
  for (size_t i = 0; i < inv.size(); ++i) out[i] = static_cast<float>(inv[i]);
  return out;
}

std::vector<float> rope_cos_sin_table(const RopeParams& p, int64_t max_positions) {
  SS_REQUIRE(max_positions >= 1,
             "rope_cos_sin_table: max_positions must be >= 1 (got " << max_positions << ")");
  const std::vector<float> inv = rope_inv_freq(p);
  const int64_t d = p.head_dim;
  const int64_t half = d / 2;
  std::vector<float> table(static_cast<size_t>(max_positions * d));
  for (int64_t pos = 0; pos < max_positions; ++pos) {
    float* row = table.data() + pos * d;
    const float position = static_cast<float>(pos);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = position * inv[static_cast<size_t>(i)];  // the float product
      row[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      row[half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  return table;
}

void rope_apply_ref(std::span<bf16_t> x, int64_t tokens, int64_t heads, int64_t head_dim,
                    int64_t ld, std::span<const int32_t> positions,
                    std::span<const float> cos_sin) {
  require_head_dim("rope_apply_ref", head_dim);
  SS_REQUIRE(tokens >= 0 && heads >= 1 && ld >= heads * head_dim,
             "rope_apply_ref: bad sizes: tokens " << tokens << ", heads " << heads << ", head_dim "
                                                  << head_dim << ", ld " << ld
                                                  << " (need ld >= heads * head_dim)");
  SS_REQUIRE(static_cast<int64_t>(positions.size()) == tokens,
             "rope_apply_ref: positions holds " << positions.size() << " entries for " << tokens
                                                << " tokens");
  if (tokens == 0) return;
  SS_REQUIRE(static_cast<int64_t>(x.size()) >= (tokens - 1) * ld + heads * head_dim,
             "rope_apply_ref: x holds " << x.size() << " elements; " << tokens
                                        << " tokens of stride " << ld << " need "
                                        << (tokens - 1) * ld + heads * head_dim);
  SS_REQUIRE(!cos_sin.empty() && static_cast<int64_t>(cos_sin.size()) % head_dim == 0,
             "rope_apply_ref: cos_sin holds "
                 << cos_sin.size() << " floats, not a whole number of rows of " << head_dim);
  const int64_t max_positions = static_cast<int64_t>(cos_sin.size()) / head_dim;
  const int64_t half = head_dim / 2;
  std::vector<float> head(static_cast<size_t>(head_dim));
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t pos = positions[static_cast<size_t>(t)];
    SS_REQUIRE(pos >= 0 && pos < max_positions, "rope_apply_ref: token " << t << " has position "
                                                                         << pos << ", outside [0, "
                                                                         << max_positions << ")");
    const float* cos = cos_sin.data() + pos * head_dim;
    const float* sin = cos + half;
    for (int64_t h = 0; h < heads; ++h) {
      bf16_t* v = x.data() + t * ld + h * head_dim;
      for (int64_t i = 0; i < head_dim; ++i) head[static_cast<size_t>(i)] = to_float(v[i]);
      for (int64_t i = 0; i < half; ++i) {
        const float lo = head[static_cast<size_t>(i)];
        const float hi = head[static_cast<size_t>(i + half)];
        const float lo_cos = lo * cos[i];
        const float hi_sin = hi * sin[i];
        const float hi_cos = hi * cos[i];
        const float lo_sin = lo * sin[i];
        v[i] = bf16_from_float(lo_cos - hi_sin);
        v[i + half] = bf16_from_float(hi_cos + lo_sin);
      }
    }
  }
}

}  // namespace slidesparse
