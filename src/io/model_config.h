// Hugging Face config.json of the Llama and Qwen2 families, parsed into the sizes the converter,
// the engine and the benchmarks need. Any size of those families is accepted; other architectures
// are refused. head_dim defaults to hidden_size / num_attention_heads when the key is absent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slidesparse/dtype.h"

namespace slidesparse {

// HF "rope_scaling" (llama3 style); factors default to 1 when a key is absent.
struct RopeScaling {
  std::string type;  // "rope_type" (or legacy "type"), e.g. "llama3", "linear", "dynamic"
  double factor = 1;
  double low_freq_factor = 1;
  double high_freq_factor = 1;
  int64_t original_max_position_embeddings = 0;
};

struct ModelConfig {
  std::string name;        // "Qwen2.5-7B" (file stem / dir name)
  std::string model_type;  // "llama" | "qwen2"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t num_hidden_layers = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool qkv_bias = false;  // qwen2: true; llama: attention_bias (default false)
  bool o_bias = false;    // llama: attention_bias; qwen2: false
  bool mlp_bias = false;  // llama: mlp_bias (default false); qwen2: false
  bool tie_word_embeddings = false;
  DType torch_dtype = DType::kBF16;  // "torch_dtype" (or newer "dtype"); bf16 when absent

  // Throws FormatError naming `name` and the missing / bad key; refuses other families.
  static ModelConfig from_json(const nlohmann::json& j, std::string name);
  // A config.json file or a directory holding one. The name is the file stem, or the directory's
  // name for ".../config.json".
  static ModelConfig load(const std::filesystem::path& config_json_or_dir);
};

// One linear layer's GEMM shape: weight [n, k].
struct LinearShape {
  std::string name;
  int64_t n = 0;
  int64_t k = 0;
};

// The four benchmark GEMMs with fused projections, as the seed report: qkv N=(heads+2*kv)*head_dim,
// K=hidden; o N=hidden, K=heads*head_dim; gate_up N=2*intermediate, K=hidden; down N=hidden,
// K=intermediate.
std::vector<LinearShape> benchmark_linear_shapes(const ModelConfig& config);

// A path to config.json or to a directory holding one, or a model name looked up as <NAME>.json in
// $SLIDESPARSE_MODELS_DIR and then in the repository's models/ folder. Unknown name -> Error
// listing the known names.
ModelConfig resolve_model(std::string_view name_or_path);
// The config.json file resolve_model would read (same lookup, same errors).
std::filesystem::path resolve_model_path(std::string_view name_or_path);

// Names (file stems) of the configs resolve_model finds by name, sorted, without duplicates.
std::vector<std::string> known_model_names();

}  // namespace slidesparse
