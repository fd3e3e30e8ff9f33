// Tensor layout of HF Llama / Qwen2 checkpoints (transformers' modeling_llama / modeling_qwen2
// parameter names).
#include "io/hf_layout.h"

#include <charconv>

namespace slidesparse {

std::vector<HfTensor> hf_tensor_layout(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size;
  const int64_t q_out = c.num_attention_heads * c.head_dim;
  const int64_t kv_out = c.num_key_value_heads * c.head_dim;
  const int64_t inter = c.intermediate_size;
  std::vector<HfTensor> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, hidden}, HfTensorRole::kEmbedding});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    out.push_back({p + "input_layernorm.weight", {hidden}, HfTensorRole::kNorm});
    const std::pair<const char*, int64_t> attn[] = {
        {"q_proj", q_out}, {"k_proj", kv_out}, {"v_proj", kv_out}};
    for (auto [proj, n] : attn) {
      out.push_back(
          {p + "self_attn." + proj + ".weight", {n, hidden}, HfTensorRole::kLinearWeight});
      if (c.qkv_bias) out.push_back({p + "self_attn." + proj + ".bias", {n}, HfTensorRole::kBias});
    }
    out.push_back({p + "self_attn.o_proj.weight", {hidden, q_out}, HfTensorRole::kLinearWeight});
    if (c.o_bias) out.push_back({p + "self_attn.o_proj.bias", {hidden}, HfTensorRole::kBias});
    out.push_back({p + "post_attention_layernorm.weight", {hidden}, HfTensorRole::kNorm});
    const std::tuple<const char*, int64_t, int64_t> mlp[] = {
        {"gate_proj", inter, hidden}, {"up_proj", inter, hidden}, {"down_proj", hidden, inter}};
    for (auto [proj, n, k] : mlp) {
      out.push_back({p + "mlp." + proj + ".weight", {n, k}, HfTensorRole::kLinearWeight});
      if (c.mlp_bias) out.push_back({p + "mlp." + proj + ".bias", {n}, HfTensorRole::kBias});
    }
  }
  out.push_back({"model.norm.weight", {hidden}, HfTensorRole::kNorm});
  if (!c.tie_word_embeddings)
    out.push_back({"lm_head.weight", {c.vocab_size, hidden}, HfTensorRole::kLmHead});
  return out;
}

std::optional<LinearName> parse_linear_weight_name(std::string_view name) {
  constexpr std::string_view prefix = "model.layers.";
  constexpr std::string_view suffix = ".weight";
  if (!name.starts_with(prefix) || !name.ends_with(suffix)) return std::nullopt;
  std::string_view rest = name.substr(prefix.size());
  LinearName out;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), out.layer);
  if (ec != std::errc() || ptr == rest.data() || out.layer < 0) return std::nullopt;
  rest = rest.substr(static_cast<size_t>(ptr - rest.data()));
  rest = rest.substr(0, rest.size() - suffix.size());
  for (std::string_view proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    if (rest == std::string(".self_attn.") + std::string(proj)) {
      out.projection = proj;
      return out;
    }
  }
  for (std::string_view proj : {"gate_proj", "up_proj", "down_proj"}) {
    if (rest == std::string(".mlp.") + std::string(proj)) {
      out.projection = proj;
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace slidesparse
