// Rotary position embedding of the Llama / Qwen2 family (rotate-half form, as HF), CPU reference:
// the inverse frequencies (plain theta, or Llama 3's rope_scaling), the float cos/sin table the
// GPU kernel reads, and the in-place application with one bf16 rounding per element
// (CONTRACTS.md step 3).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "slidesparse/core/float_formats.h"

namespace slidesparse {

// HF rope_scaling of rope_type "llama3".
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct RopeParams {
  double theta = 10000.0;                    // rope_theta
  int64_t head_dim = 0;                      // D, even
  std::optional<Llama3RopeScaling> scaling;  // present for rope_type "llama3"
  // HF rope_type: "default" (plain theta) or "llama3"; any other (linear, dynamic, yarn, ...) is
  // refused by rope_inv_freq with NotSupportedError naming it. Empty means "llama3" when scaling
  // is present, else "default".
  std::string rope_type;
};

// inv_freq [D/2] as HF computes it: inv[i] = 1 / theta^(2i/D); for llama3, with wavelen = 2 pi /
// inv[i], low = orig / low_freq_factor, high = orig / high_freq_factor: inv[i] where wavelen <
// high, inv[i] / factor where wavelen > low, else (1 - s) inv[i] / factor + s inv[i] with
// s = (orig / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor).
// Evaluated in double, rounded once to float (HF evaluates in float32: up to 1 ulp apart).
// Throws NotSupportedError for other rope types, Error on bad parameters.
std::vector<float> rope_inv_freq(const RopeParams& params);

// cos/sin table float [max_positions, D]: row p holds cos(angle_i) for i < D/2, then sin(angle_i)
// for i < D/2, angle_i = float(p) * inv_freq[i] (a float product, as HF); cos and sin are
// evaluated in double on that float angle and rounded to float.
std::vector<float> rope_cos_sin_table(const RopeParams& params, int64_t max_positions);

// In place on `heads` heads of D elements per token; token t's heads start at x[t * ld] and are
// contiguous (pass a subspan starting at the k columns of a qkv row for k). positions [tokens]
// index rows of cos_sin ([max_positions, D] as rope_cos_sin_table). With c = cos[i mod D/2],
// s = sin[i mod D/2], every product and sum a separate float rounding (no FMA):
//   out[i] = bf16(x[i] * c - x[i + D/2] * s)   for i < D/2
//   out[i] = bf16(x[i] * c + x[i - D/2] * s)   for i >= D/2
void rope_apply_ref(std::span<bf16_t> x, int64_t tokens, int64_t heads, int64_t head_dim,
                    int64_t ld, std::span<const int32_t> positions, std::span<const float> cos_sin);

}  // namespace slidesparse
