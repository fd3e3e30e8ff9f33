// CPU reference of the Llama / Qwen2 decoder (model_ref.h): a composition of the op references
// in the order and with the roundings of CONTRACTS.md. Slow on purpose (plain loops, double
// sums): it is the target the GPU engine is compared with, for tiny models.
#include "slidesparse/core/model_ref.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "slidesparse/core/attention_ref.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/linear_ref.h"
#include "slidesparse/core/ops_ref.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

void require_size(const std::string& name, size_t size, int64_t rows, int64_t cols) {
  SS_REQUIRE(static_cast<int64_t>(size) == rows * cols,
             "RefModelWeights: " << name << " holds " << size << " elements, expected [" << rows
                                 << ", " << cols << "] = " << rows * cols);
}

void require_vector(const std::string& name, size_t size, int64_t n, bool present) {
  const int64_t want = present ? n : 0;
  SS_REQUIRE(static_cast<int64_t>(size) == want,
             "RefModelWeights: " << name << " holds " << size << " elements, expected " << want
                                 << (present ? "" : " (the config has no such bias)"));
}

std::vector<float> concat(std::initializer_list<const std::vector<float>*> parts) {
  std::vector<float> out;
  for (const auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

void validate_mode(const RefLinearMode& mode) {
  SS_REQUIRE_T(NotSupportedError,
               mode.compute == DType::kF32 || mode.compute == DType::kBF16 ||
                   mode.compute == DType::kI8 || mode.compute == DType::kFP8E4M3,
               "RefLinearMode: compute dtype '" << dtype_name(mode.compute)
                                                << "' is not supported (fp32, bf16, int8, fp8)");
  SS_REQUIRE(mode.compute != DType::kF32 || !mode.sparsity,
             "RefLinearMode: the float-only path (fp32) has no SlideSparse variant");
}

// One projection y = x . W^T + b through the mode's reference linear, rounded to bf16; with a
// residual [m, n], bf16(residual + y) with the single rounding of the folded epilogue.
std::vector<bf16_t> run_linear(const RefLinearMode& mode, std::span<const bf16_t> x,
                               std::span<const float> w, std::span<const float> b, int64_t m,
                               int64_t n, int64_t k, std::span<const bf16_t> residual) {
  if (mode.compute == DType::kF32) {
    const std::vector<float> acc = gemm_float_ref(to_float_vector(x), w, m, n, k);
    if (!residual.empty()) return dequant_residual_ref(std::span(acc), m, n, {}, {}, b, residual);
    return to_bf16_vector(dequant_ref(std::span(acc), m, n, {}, {}, b));
  }
  const LinearRefProblem problem{x, w, b, m, n, k, mode.compute};
  LinearRefResult r =
      mode.sparsity ? linear_slide_ref(problem, *mode.sparsity) : linear_dense_ref(problem);
  if (residual.empty()) return std::move(r.y_bf16);
  if (mode.compute == DType::kI8) {
    return dequant_residual_ref(std::span<const int32_t>(r.acc_int32), m, n, r.scale_per_token,
                                r.scale_per_channel, b, residual);
  }
  return dequant_residual_ref(std::span<const float>(r.acc_float), m, n, r.scale_per_token,
                              r.scale_per_channel, b, residual);
}

// Portable deterministic uniform numbers: splitmix64, one independent stream per tensor.
class TensorRandom {
 public:
  TensorRandom(uint64_t seed, uint64_t tensor_id)
      : state_(seed ^ (0x9E3779B97F4A7C15ull * (tensor_id + 1))) {}
  // Uniform in [-bound, bound), rounded to a bf16 value.
  float symmetric(float bound) {
    const double u = static_cast<double>(next() >> 40) * 0x1.0p-24;  // [0, 1)
    return to_float(bf16_from_float(static_cast<float>((2.0 * u - 1.0) * bound)));
  }

 private:
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

std::vector<float> random_floats(uint64_t seed, uint64_t id, int64_t count, float bound) {
  TensorRandom rng(seed, id);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = rng.symmetric(bound);
  return v;
}

std::vector<bf16_t> random_bf16(uint64_t seed, uint64_t id, int64_t count, float center,
                                float bound) {
  TensorRandom rng(seed, id);
  std::vector<bf16_t> v(static_cast<size_t>(count));
  for (bf16_t& x : v) x = bf16_from_float(center + rng.symmetric(bound));
  return v;
}

}  // namespace

void validate_ref_weights(const TransformerConfig& c, const RefModelWeights& w) {
  c.validate();
  const int64_t h = c.hidden, q = c.q_dim(), kv = c.kv_dim(), inter = c.intermediate;
  require_size("embed", w.embed.size(), c.vocab, h);
  require_size("norm", w.norm.size(), 1, h);
  if (c.tie_word_embeddings) {
    SS_REQUIRE(w.lm_head.empty(), "RefModelWeights: lm_head is given ("
                                      << w.lm_head.size()
                                      << " elements) but the config ties it to the embedding");
  } else {
    require_size("lm_head", w.lm_head.size(), c.vocab, h);
  }
  SS_REQUIRE(static_cast<int64_t>(w.layers.size()) == c.layers,
             "RefModelWeights: " << w.layers.size() << " layers, the config has " << c.layers);
  for (int64_t i = 0; i < c.layers; ++i) {
    const RefLayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = "layers." + std::to_string(i) + ".";
    require_size(p + "input_layernorm", l.input_layernorm.size(), 1, h);
    require_size(p + "q_proj", l.q_proj.size(), q, h);
    require_size(p + "k_proj", l.k_proj.size(), kv, h);
    require_size(p + "v_proj", l.v_proj.size(), kv, h);
    require_vector(p + "q_bias", l.q_bias.size(), q, c.qkv_bias);
    require_vector(p + "k_bias", l.k_bias.size(), kv, c.qkv_bias);
    require_vector(p + "v_bias", l.v_bias.size(), kv, c.qkv_bias);
    require_size(p + "o_proj", l.o_proj.size(), h, q);
    require_vector(p + "o_bias", l.o_bias.size(), h, c.o_bias);
    require_size(p + "post_attention_layernorm", l.post_attention_layernorm.size(), 1, h);
    require_size(p + "gate_proj", l.gate_proj.size(), inter, h);
    require_size(p + "up_proj", l.up_proj.size(), inter, h);
    require_vector(p + "gate_bias", l.gate_bias.size(), inter, c.mlp_bias);
    require_vector(p + "up_bias", l.up_bias.size(), inter, c.mlp_bias);
    require_size(p + "down_proj", l.down_proj.size(), h, inter);
    require_vector(p + "down_bias", l.down_bias.size(), h, c.mlp_bias);
  }
}

RefModelSession::RefModelSession(const TransformerConfig& config, const RefModelWeights& weights,
                                 RefLinearMode mode)
    : config_(config), weights_(weights), mode_(mode) {
  validate_ref_weights(config_, weights_);
  validate_mode(mode_);
  const TransformerConfig& c = config_;
  fused_.resize(static_cast<size_t>(c.layers));
  for (int64_t i = 0; i < c.layers; ++i) {
    const RefLayerWeights& l = weights_.layers[static_cast<size_t>(i)];
    FusedLayer& f = fused_[static_cast<size_t>(i)];
    f.qkv = concat({&l.q_proj, &l.k_proj, &l.v_proj});
    f.qkv_bias = concat({&l.q_bias, &l.k_bias, &l.v_bias});
    f.gate_up = concat({&l.gate_proj, &l.up_proj});
    f.gate_up_bias = concat({&l.gate_bias, &l.up_bias});
    if (mode_.sparsity) {
      const std::string p = "layers." + std::to_string(i) + ".";
      const Sparsity sp = *mode_.sparsity;
      check_pattern<float>(f.qkv, c.qkv_dim(), c.hidden, sp, p + "qkv (q_proj, k_proj, v_proj)");
      check_pattern<float>(l.o_proj, c.hidden, c.q_dim(), sp, p + "o_proj");
      check_pattern<float>(f.gate_up, 2 * c.intermediate, c.hidden, sp,
                           p + "gate_up (gate_proj, up_proj)");
      check_pattern<float>(l.down_proj, c.hidden, c.intermediate, sp, p + "down_proj");
    }
  }
  k_cache_.resize(static_cast<size_t>(c.layers));
  v_cache_.resize(static_cast<size_t>(c.layers));
}

std::vector<bf16_t> RefModelSession::step(std::span<const int32_t> tokens) {
  const TransformerConfig& c = config_;
  const int64_t t = static_cast<int64_t>(tokens.size());
  SS_REQUIRE(t >= 1, "RefModelSession::step: no tokens");
  SS_REQUIRE(length_ + t <= c.max_positions,
             "RefModelSession::step: " << length_ << " + " << t << " tokens exceed max_positions "
                                       << c.max_positions);
  for (int64_t i = 0; i < t; ++i) {
    const int32_t id = tokens[static_cast<size_t>(i)];
    SS_REQUIRE(id >= 0 && id < c.vocab, "RefModelSession::step: token "
                                            << i << " is " << id << ", outside [0, " << c.vocab
                                            << ")");
  }
  const int64_t s = length_ + t;
  // cos/sin rows do not depend on how many there are: grow the table to what is needed.
  const int64_t d = c.head_dim;
  if (static_cast<int64_t>(cos_sin_.size()) < s * d) {
    const int64_t rows = std::min(c.max_positions, std::max<int64_t>(2 * s, 64));
    cos_sin_ = rope_cos_sin_table(c.rope, rows);
  }
  std::vector<int32_t> positions(static_cast<size_t>(t));
  for (int64_t i = 0; i < t; ++i)
    positions[static_cast<size_t>(i)] = static_cast<int32_t>(length_ + i);

  const int64_t hidden = c.hidden, q_dim = c.q_dim(), kv_dim = c.kv_dim(), qkv_dim = c.qkv_dim();
  const float eps = static_cast<float>(c.rms_eps);
  const float sm_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));

  std::vector<bf16_t> h = embedding_ref(weights_.embed, c.vocab, hidden, tokens);
  for (int64_t li = 0; li < c.layers; ++li) {
    const RefLayerWeights& l = weights_.layers[static_cast<size_t>(li)];
    const FusedLayer& f = fused_[static_cast<size_t>(li)];
    // 1-3: norm, fused qkv, RoPE on the q and k heads in place.
    const auto xn = rms_norm_ref(h, t, hidden, l.input_layernorm, eps);
    auto qkv = run_linear(mode_, xn, f.qkv, f.qkv_bias, t, qkv_dim, hidden, {});
    rope_apply_ref(qkv, t, c.num_q_heads, d, qkv_dim, positions, cos_sin_);
    rope_apply_ref(std::span(qkv).subspan(static_cast<size_t>(q_dim)), t, c.num_kv_heads, d,
                   qkv_dim, positions, cos_sin_);
    // 4: append this step's k, v rows to the cache; attend over all s positions.
    auto& k_cache = k_cache_[static_cast<size_t>(li)];
    auto& v_cache = v_cache_[static_cast<size_t>(li)];
    std::vector<float> q(static_cast<size_t>(t * q_dim));
    for (int64_t i = 0; i < t; ++i) {
      const bf16_t* row = qkv.data() + i * qkv_dim;
      for (int64_t c2 = 0; c2 < q_dim; ++c2)
        q[static_cast<size_t>(i * q_dim + c2)] = to_float(row[c2]);
      k_cache.insert(k_cache.end(), row + q_dim, row + q_dim + kv_dim);
      v_cache.insert(v_cache.end(), row + q_dim + kv_dim, row + q_dim + 2 * kv_dim);
    }
    const auto attn_f = attention_ref(q, to_float_vector(k_cache), to_float_vector(v_cache), t, s,
                                      c.num_q_heads, c.num_kv_heads, d, sm_scale, true);
    const auto attn = to_bf16_vector(attn_f);
    // 5: o projection with the residual folded in.
    h = run_linear(mode_, attn, l.o_proj, l.o_bias, t, hidden, q_dim, h);
    // 6-8: norm, fused gate/up, SiLU*mul, down with the residual.
    const auto xn2 = rms_norm_ref(h, t, hidden, l.post_attention_layernorm, eps);
    const auto gu =
        run_linear(mode_, xn2, f.gate_up, f.gate_up_bias, t, 2 * c.intermediate, hidden, {});
    const auto a = silu_mul_ref(gu, t, c.intermediate);
    h = run_linear(mode_, a, l.down_proj, l.down_bias, t, hidden, c.intermediate, h);
  }
  length_ = s;
  const auto xf = rms_norm_ref(h, t, hidden, weights_.norm, eps);
  const std::vector<bf16_t>& head = c.tie_word_embeddings ? weights_.embed : weights_.lm_head;
  return to_bf16_vector(gemm_bf16_ref(xf, head, t, c.vocab, hidden));
}

std::vector<float> ref_model_logits(const TransformerConfig& config, const RefModelWeights& weights,
                                    RefLinearMode mode, std::span<const int32_t> tokens) {
  RefModelSession session(config, weights, mode);
  return to_float_vector(session.step(tokens));
}

std::vector<int32_t> ref_model_generate_greedy(const TransformerConfig& config,
                                               const RefModelWeights& weights, RefLinearMode mode,
                                               std::span<const int32_t> prompt,
                                               int64_t new_tokens) {
  SS_REQUIRE(!prompt.empty(), "ref_model_generate_greedy: empty prompt");
  SS_REQUIRE(new_tokens >= 0,
             "ref_model_generate_greedy: new_tokens must be >= 0 (got " << new_tokens << ")");
  std::vector<int32_t> out;
  if (new_tokens == 0) return out;
  RefModelSession session(config, weights, mode);
  std::vector<bf16_t> logits = session.step(prompt);
  const int64_t v = config.vocab;
  for (int64_t i = 0; i < new_tokens; ++i) {
    const int64_t rows = static_cast<int64_t>(logits.size()) / v;
    const auto last = std::span<const bf16_t>(logits).subspan(static_cast<size_t>((rows - 1) * v));
    const int32_t next = argmax_ref(last, 1, v)[0];
    out.push_back(next);
    if (i + 1 < new_tokens) logits = session.step(std::span<const int32_t>(&next, 1));
  }
  return out;
}

RefModelWeights make_random_ref_weights(const TransformerConfig& c, uint64_t seed,
                                        std::optional<Sparsity> prune) {
  c.validate();
  const int64_t h = c.hidden, q = c.q_dim(), kv = c.kv_dim(), inter = c.intermediate;
  const float in_h = static_cast<float>(1.0 / std::sqrt(static_cast<double>(h)));
  const float in_q = static_cast<float>(1.0 / std::sqrt(static_cast<double>(q)));
  const float in_i = static_cast<float>(1.0 / std::sqrt(static_cast<double>(inter)));
  constexpr float kBias = 0.1f;
  RefModelWeights w;
  w.embed = random_bf16(seed, 0, c.vocab * h, 0.0f, 1.0f);
  w.norm = random_bf16(seed, 1, h, 1.0f, 0.2f);
  if (!c.tie_word_embeddings) w.lm_head = random_bf16(seed, 2, c.vocab * h, 0.0f, in_h);
  const auto linear = [&](uint64_t id, int64_t rows, int64_t cols, float bound) {
    std::vector<float> v = random_floats(seed, id, rows * cols, bound);
    if (prune) prune_magnitude<float>(v, rows, cols, *prune);
    return v;
  };
  const auto bias = [&](uint64_t id, int64_t n, bool present) {
    return present ? random_floats(seed, id, n, kBias) : std::vector<float>{};
  };
  w.layers.resize(static_cast<size_t>(c.layers));
  for (int64_t i = 0; i < c.layers; ++i) {
    RefLayerWeights& l = w.layers[static_cast<size_t>(i)];
    const uint64_t base = 16 + static_cast<uint64_t>(i) * 32;
    l.input_layernorm = random_bf16(seed, base + 0, h, 1.0f, 0.2f);
    l.q_proj = linear(base + 1, q, h, in_h);
    l.k_proj = linear(base + 2, kv, h, in_h);
    l.v_proj = linear(base + 3, kv, h, in_h);
    l.q_bias = bias(base + 4, q, c.qkv_bias);
    l.k_bias = bias(base + 5, kv, c.qkv_bias);
    l.v_bias = bias(base + 6, kv, c.qkv_bias);
    l.o_proj = linear(base + 7, h, q, in_q);
    l.o_bias = bias(base + 8, h, c.o_bias);
    l.post_attention_layernorm = random_bf16(seed, base + 9, h, 1.0f, 0.2f);
    l.gate_proj = linear(base + 10, inter, h, in_h);
    l.up_proj = linear(base + 11, inter, h, in_h);
    l.gate_bias = bias(base + 12, inter, c.mlp_bias);
    l.up_bias = bias(base + 13, inter, c.mlp_bias);
    l.down_proj = linear(base + 14, h, inter, in_i);
    l.down_bias = bias(base + 15, h, c.mlp_bias);
  }
  return w;
}

}  // namespace slidesparse
