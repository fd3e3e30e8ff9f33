// Shared pieces of the engine tests: tiny models of both families (2 layers, small sizes, head_dim
// 64 / 128, GQA groups 1, 5, 7, with and without Llama 3 rope scaling), their config.json, the
// CPU reference run of a batch, and logits comparison statistics.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slidesparse/core/model_ref.h"
#include "slidesparse/core/transformer_config.h"
#include "slidesparse/engine/engine.h"

namespace slidesparse::test {

struct TinyModel {
  std::string name;
  TransformerConfig config;
};

inline TransformerConfig tiny_config(ModelFamily family, int64_t hidden, int64_t heads,
                                     int64_t kv_heads, int64_t head_dim, bool llama3_rope) {
  TransformerConfig c;
  c.family = family;
  c.hidden = hidden;
  c.intermediate = 2 * hidden + 128;
  c.num_q_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.layers = 2;
  c.vocab = 1000;
  c.rms_eps = 1e-5;
  c.rope.head_dim = head_dim;
  c.rope.theta = family == ModelFamily::kQwen2 ? 1000000.0 : 500000.0;
  if (llama3_rope) {
    Llama3RopeScaling s;
    s.factor = 32.0;
    s.low_freq_factor = 1.0;
    s.high_freq_factor = 4.0;
    s.original_max_position_embeddings = 64;  // small, so test positions cross the bands
    c.rope.scaling = s;
    c.rope.rope_type = "llama3";
  } else {
    c.rope.rope_type = "default";
  }
  c.max_positions = 1024;
  c.qkv_bias = family == ModelFamily::kQwen2;
  c.tie_word_embeddings = family == ModelFamily::kLlama;
  return c;
}

// gtest prints a parameter with this: a readable, stable name instead of its raw bytes.
inline void PrintTo(const TinyModel& m, std::ostream* os) { *os << m.name; }

// The tiny zoo: every family, head_dim 64 and 128, GQA groups 1, 5 and 7, rope scaling on / off.
inline std::vector<TinyModel> tiny_models() {
  return {
      {"llama_g1_d64", tiny_config(ModelFamily::kLlama, 256, 4, 4, 64, false)},
      {"llama3rope_g2_d128", tiny_config(ModelFamily::kLlama, 512, 4, 2, 128, true)},
      {"qwen2_g5_d64", tiny_config(ModelFamily::kQwen2, 320, 5, 1, 64, false)},
      {"qwen2_g7_d128", tiny_config(ModelFamily::kQwen2, 896, 14, 2, 128, false)},
  };
}

// The HF config.json of a tiny model.
inline nlohmann::json hf_config_json(const TransformerConfig& c) {
  nlohmann::json j;
  const bool qwen = c.family == ModelFamily::kQwen2;
  j["model_type"] = qwen ? "qwen2" : "llama";
  j["architectures"] = {qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["hidden_size"] = c.hidden;
  j["intermediate_size"] = c.intermediate;
  j["num_attention_heads"] = c.num_q_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["num_hidden_layers"] = c.layers;
  j["vocab_size"] = c.vocab;
  j["rms_norm_eps"] = c.rms_eps;
  j["rope_theta"] = c.rope.theta;
  j["max_position_embeddings"] = c.max_positions;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  j["torch_dtype"] = "bfloat16";
  if (!qwen) {
    j["attention_bias"] = false;
    j["mlp_bias"] = false;
  }
  if (c.rope.scaling) {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope.scaling->factor},
        {"low_freq_factor", c.rope.scaling->low_freq_factor},
        {"high_freq_factor", c.rope.scaling->high_freq_factor},
        {"original_max_position_embeddings", c.rope.scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  return j;
}

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

// Deterministic prompts: token ids in [0, vocab).
inline std::vector<int32_t> test_prompt(int64_t length, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> p(static_cast<size_t>(length));
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 12345;
  for (auto& t : p) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(vocab));
  }
  return p;
}

struct LogitStats {
  double max_abs = 0;   // max |engine - ref|
  double rms_diff = 0;  // rms of the difference
  double rms_ref = 0;   // rms of the reference
  double max_ref = 0;
  int64_t nonfinite = 0;
};

inline LogitStats compare_logits(const std::vector<float>& got, const std::vector<float>& ref) {
  LogitStats s;
  EXPECT_EQ(got.size(), ref.size());
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    if (!std::isfinite(got[i])) {
      ++s.nonfinite;
      continue;
    }
    const double d = static_cast<double>(got[i]) - ref[i];
    s.max_abs = std::max(s.max_abs, std::abs(d));
    s.max_ref = std::max(s.max_ref, std::abs(static_cast<double>(ref[i])));
    d2 += d * d;
    r2 += static_cast<double>(ref[i]) * ref[i];
  }
  const double n = static_cast<double>(std::max<size_t>(ref.size(), 1));
  s.rms_diff = std::sqrt(d2 / n);
  s.rms_ref = std::sqrt(r2 / n);
  return s;
}

inline std::string describe(const LogitStats& s) {
  return "max|d| " + std::to_string(s.max_abs) + ", rms(d) " + std::to_string(s.rms_diff) +
         ", rms(ref) " + std::to_string(s.rms_ref) + ", max|ref| " + std::to_string(s.max_ref);
}

// The CPU reference's logits of the last position of each prompt (bf16 values as float).
inline std::vector<float> ref_last_logits(const TransformerConfig& c, const RefModelWeights& w,
                                          RefLinearMode mode,
                                          const std::vector<std::vector<int32_t>>& prompts) {
  std::vector<float> out;
  for (const auto& p : prompts) {
    RefModelSession s(c, w, mode);
    const std::vector<bf16_t> l = s.step(p);
    for (int64_t v = 0; v < c.vocab; ++v)
      out.push_back(to_float(l[static_cast<size_t>((p.size() - 1) * c.vocab + v)]));
  }
  return out;
}

inline std::vector<std::vector<int32_t>> one(const std::vector<int32_t>& prompt) {
  return {prompt};
}

inline EngineOptions small_options(DType compute, GemmBackend backend,
                                   std::optional<Sparsity> sparsity) {
  EngineOptions o;
  o.compute = compute;
  o.backend = backend;
  o.sparsity = sparsity;
  o.max_batch = 8;
  o.max_tokens_per_step = 512;
  o.kv_cache_tokens = 4096;
  o.use_tuning = false;
  o.epilogue = Epilogue::kKernel;  // the reference's rounding points
  return o;
}

}  // namespace slidesparse::test
