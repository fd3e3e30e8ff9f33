// The tensor names and shapes of a Hugging Face Llama / Qwen2 checkpoint for a given config, and
// the recognition of the seven linear weights (q, k, v, o, gate, up, down) by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/model_config.h"

namespace slidesparse {

enum class HfTensorRole : uint8_t { kEmbedding, kNorm, kLinearWeight, kBias, kLmHead };

struct HfTensor {
  std::string name;            // "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [N, K] for linear weights
  HfTensorRole role = HfTensorRole::kNorm;
};

// Every tensor the config implies, in the usual HF order (embedding, layer by layer, final norm,
// lm_head unless tie_word_embeddings).
std::vector<HfTensor> hf_tensor_layout(const ModelConfig& config);

// "model.layers.<i>.self_attn.{q,k,v,o}_proj.weight" / "model.layers.<i>.mlp.{gate,up,down}_proj
// .weight": the layer index and the projection ("q_proj", ..., "down_proj"); nullopt otherwise.
struct LinearName {
  int64_t layer = 0;
  std::string projection;
};
std::optional<LinearName> parse_linear_weight_name(std::string_view name);

}  // namespace slidesparse
