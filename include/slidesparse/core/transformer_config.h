// The sizes of one decoder-only transformer of the Llama / Qwen2 family, as the CPU reference
// model and the GPU engine use them (the engine fills it from io's ModelConfig; core knows no
// config.json). Field names follow the math, HF's keys are in the comments.
#pragma once

#include <cstdint>
#include <string_view>

#include "slidesparse/core/rope_ref.h"

namespace slidesparse {

enum class ModelFamily : uint8_t { kLlama, kQwen2 };

std::string_view family_name(ModelFamily family);  // "llama", "qwen2"

struct TransformerConfig {
  ModelFamily family = ModelFamily::kLlama;  // model_type
  int64_t hidden = 0;                        // hidden_size H
  int64_t intermediate = 0;                  // intermediate_size I
  int64_t num_q_heads = 0;                   // num_attention_heads Hq
  int64_t num_kv_heads = 0;                  // num_key_value_heads Hkv (divides Hq)
  int64_t head_dim = 0;                      // head_dim D (even)
  int64_t layers = 0;                        // num_hidden_layers
  int64_t vocab = 0;                         // vocab_size V
  double rms_eps = 1e-6;                     // rms_norm_eps, applied as a float
  RopeParams rope;                           // rope_theta, rope_scaling; rope.head_dim == D
  int64_t max_positions = 0;                 // max_position_embeddings
  bool qkv_bias = false;                     // qwen2: true; llama: attention_bias
  bool o_bias = false;                       // llama: attention_bias
  bool mlp_bias = false;                     // llama: mlp_bias
  bool tie_word_embeddings = false;          // lm_head is the embedding table

  int64_t q_dim() const { return num_q_heads * head_dim; }    // Hq * D
  int64_t kv_dim() const { return num_kv_heads * head_dim; }  // Hkv * D
  int64_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }  // rows of the fused qkv weight
  int64_t group_size() const { return num_q_heads / num_kv_heads; }

  // Throws Error naming the first bad field (sizes < 1, Hq not a multiple of Hkv, odd D,
  // rope.head_dim != D, vocab beyond int32 ids, ...); NotSupportedError for an unsupported rope.
  void validate() const;
};

}  // namespace slidesparse
