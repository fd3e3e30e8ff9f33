// Parsing and validation of HF config.json for the Llama and Qwen2 families, and the lookup of
// named configs ($SLIDESPARSE_MODELS_DIR, then the repository's models/ folder).
#include "io/model_config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "slidesparse/error.h"

#ifndef SLIDESPARSE_SOURCE_DIR
#define SLIDESPARSE_SOURCE_DIR ""
#endif

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void bad(const std::string& name, const std::string& what) {
  throw FormatError("config '" + name + "': " + what);
}

int64_t required_int(const nlohmann::json& j, const std::string& name, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) bad(name, std::string("missing required key '") + key + "'");
  // Some exported configs write integers as 2048.0; accept those when they are whole numbers.
  if (it->is_number_float()) {
    double v = it->get<double>();
    if (v != static_cast<double>(static_cast<int64_t>(v)))
      bad(name, std::string("key '") + key + "' must be a whole number, got " + it->dump());
    return static_cast<int64_t>(v);
  }
  if (!it->is_number_integer())
    bad(name, std::string("key '") + key + "' must be an integer, got " + it->dump());
  return it->get<int64_t>();
}

int64_t required_positive(const nlohmann::json& j, const std::string& name, const char* key) {
  int64_t v = required_int(j, name, key);
  if (v <= 0)
    bad(name, std::string("key '") + key + "' must be positive, got " + std::to_string(v));
  return v;
}

double optional_double(const nlohmann::json& j, const std::string& name, const char* key,
                       double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number())
    bad(name, std::string("key '") + key + "' must be a number, got " + it->dump());
  return it->get<double>();
}

bool optional_bool(const nlohmann::json& j, const std::string& name, const char* key,
                   bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    bad(name, std::string("key '") + key + "' must be true or false, got " + it->dump());
  return it->get<bool>();
}

// "llama" or "qwen2" from model_type or architectures; refuses anything else.
std::string detect_family(const nlohmann::json& j, const std::string& name) {
  std::string model_type;
  if (auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) bad(name, "key 'model_type' must be a string, got " + it->dump());
    model_type = it->get<std::string>();
  }
  std::vector<std::string> architectures;
  if (auto it = j.find("architectures"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) bad(name, "key 'architectures' must be a list, got " + it->dump());
    for (const auto& a : *it) {
      if (!a.is_string()) bad(name, "key 'architectures' must list strings, got " + it->dump());
      architectures.push_back(a.get<std::string>());
    }
  }
  auto has_arch = [&](std::string_view arch) {
    return std::find(architectures.begin(), architectures.end(), arch) != architectures.end();
  };
  if (model_type == "llama" || (model_type.empty() && has_arch("LlamaForCausalLM"))) return "llama";
  if (model_type == "qwen2" || (model_type.empty() && has_arch("Qwen2ForCausalLM"))) return "qwen2";
  std::string seen = model_type.empty() ? "no model_type" : "model_type '" + model_type + "'";
  if (!architectures.empty()) seen += ", architectures " + j.at("architectures").dump();
  bad(name, "unsupported model family (" + seen +
                "); supported are Llama (model_type 'llama', LlamaForCausalLM) and Qwen2 "
                "(model_type 'qwen2', Qwen2ForCausalLM)");
}

DType parse_torch_dtype(const nlohmann::json& j, const std::string& name) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string())
      bad(name, std::string("key '") + key + "' must be a string, got " + it->dump());
    std::string text = it->get<std::string>();
    if (text.rfind("torch.", 0) == 0) text = text.substr(6);
    DType dtype;
    try {
      dtype = parse_dtype(text);
    } catch (const Error& e) {
      bad(name, std::string("key '") + key + "': " + e.what());
    }
    if (dtype != DType::kBF16 && dtype != DType::kF16 && dtype != DType::kF32)
      bad(name, std::string("key '") + key + "' must be bfloat16, float16 or float32, got '" +
                    it->get<std::string>() + "'");
    return dtype;
  }
  return DType::kBF16;
}

std::optional<RopeScaling> parse_rope_scaling(const nlohmann::json& j, const std::string& name) {
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_object())
    bad(name, "key 'rope_scaling' must be an object or null, got " + it->dump());
  const nlohmann::json& r = *it;
  RopeScaling rope;
  for (const char* key : {"rope_type", "type"}) {
    auto t = r.find(key);
    if (t == r.end() || t->is_null()) continue;
    if (!t->is_string()) bad(name, std::string("key 'rope_scaling.") + key + "' must be a string");
    rope.type = t->get<std::string>();
    break;
  }
  if (rope.type.empty()) bad(name, "key 'rope_scaling' has neither 'rope_type' nor 'type'");
  std::string ctx = name + " (rope_scaling)";
  rope.factor = optional_double(r, ctx, "factor", 1.0);
  rope.low_freq_factor = optional_double(r, ctx, "low_freq_factor", 1.0);
  rope.high_freq_factor = optional_double(r, ctx, "high_freq_factor", 1.0);
  if (auto o = r.find("original_max_position_embeddings"); o != r.end() && !o->is_null())
    rope.original_max_position_embeddings =
        required_positive(r, ctx, "original_max_position_embeddings");
  if (!(rope.factor > 0)) bad(name, "rope_scaling.factor must be positive");
  return rope;
}

std::vector<fs::path> model_search_dirs() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("SLIDESPARSE_MODELS_DIR"); env != nullptr && *env != '\0')
    dirs.emplace_back(env);
  if (std::string_view(SLIDESPARSE_SOURCE_DIR).size() > 0)
    dirs.push_back(fs::path(SLIDESPARSE_SOURCE_DIR) / "models");
  return dirs;
}

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j, std::string name) {
  if (!j.is_object())
    bad(name, "expected a JSON object at the top level, got " + std::string(j.type_name()));
  ModelConfig c;
  c.name = std::move(name);
  const std::string& n = c.name;
  c.model_type = detect_family(j, n);
  c.hidden_size = required_positive(j, n, "hidden_size");
  c.intermediate_size = required_positive(j, n, "intermediate_size");
  c.num_attention_heads = required_positive(j, n, "num_attention_heads");
  c.num_hidden_layers = required_positive(j, n, "num_hidden_layers");
  c.vocab_size = required_positive(j, n, "vocab_size");
  // Both families default num_key_value_heads to num_attention_heads (multi-head attention).
  c.num_key_value_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                              ? required_positive(j, n, "num_key_value_heads")
                              : c.num_attention_heads;
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = required_positive(j, n, "head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      bad(n, "no 'head_dim' and hidden_size " + std::to_string(c.hidden_size) +
                 " is not divisible by num_attention_heads " +
                 std::to_string(c.num_attention_heads));
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    bad(n, "num_attention_heads " + std::to_string(c.num_attention_heads) +
               " is not a multiple of num_key_value_heads " +
               std::to_string(c.num_key_value_heads));
  c.max_position_embeddings =
      j.contains("max_position_embeddings") && !j["max_position_embeddings"].is_null()
          ? required_positive(j, n, "max_position_embeddings")
          : 2048;
  c.rms_norm_eps = optional_double(j, n, "rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0)) bad(n, "key 'rms_norm_eps' must be positive");
  c.rope_theta = optional_double(j, n, "rope_theta", 10000.0);
  if (!(c.rope_theta > 0)) bad(n, "key 'rope_theta' must be positive");
  c.rope_scaling = parse_rope_scaling(j, n);
  if (c.model_type == "qwen2") {
    // Qwen2 always has q/k/v biases and none on o_proj or the MLP.
    c.qkv_bias = true;
    c.o_bias = false;
    c.mlp_bias = false;
  } else {
    bool attention_bias = optional_bool(j, n, "attention_bias", false);
    c.qkv_bias = attention_bias;
    c.o_bias = attention_bias;
    c.mlp_bias = optional_bool(j, n, "mlp_bias", false);
  }
  c.tie_word_embeddings = optional_bool(j, n, "tie_word_embeddings", false);
  c.torch_dtype = parse_torch_dtype(j, n);
  if (auto it = j.find("hidden_act"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "silu")
      bad(n, "key 'hidden_act' must be \"silu\" for the Llama / Qwen2 MLP, got " + it->dump());
  }
  return c;
}

ModelConfig ModelConfig::load(const fs::path& config_json_or_dir) {
  fs::path file = config_json_or_dir;
  std::error_code ec;
  if (fs::is_directory(file, ec)) file /= "config.json";
  if (!fs::is_regular_file(file, ec))
    throw Error("model config not found: " + file.string() + " is not a file");
  std::string name = file.stem().string();
  if (file.filename() == "config.json") {
    fs::path dir = fs::absolute(file, ec).parent_path();
    if (!dir.filename().empty()) name = dir.filename().string();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot open model config " + file.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("model config " + file.string() + " is not valid JSON: " + e.what());
  }
  try {
    return from_json(j, name);
  } catch (const FormatError& e) {
    throw FormatError(std::string(e.what()) + " (file " + file.string() + ")");
  }
}

std::vector<LinearShape> benchmark_linear_shapes(const ModelConfig& config) {
  const ModelConfig& c = config;
  return {
      {"qkv", (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim, c.hidden_size},
      {"o", c.hidden_size, c.num_attention_heads * c.head_dim},
      {"gate_up", 2 * c.intermediate_size, c.hidden_size},
      {"down", c.hidden_size, c.intermediate_size},
  };
}

std::vector<std::string> known_model_names() {
  std::set<std::string> names;
  for (const fs::path& dir : model_search_dirs()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_regular_file(ec) && entry.path().extension() == ".json")
        names.insert(entry.path().stem().string());
    }
  }
  return {names.begin(), names.end()};
}

ModelConfig resolve_model(std::string_view name_or_path) {
  return ModelConfig::load(resolve_model_path(name_or_path));
}

fs::path resolve_model_path(std::string_view name_or_path) {
  SS_REQUIRE(!name_or_path.empty(), "resolve_model: empty model name or path");
  fs::path as_path{std::string(name_or_path)};
  std::error_code ec;
  if (fs::is_directory(as_path, ec)) return as_path / "config.json";
  if (fs::exists(as_path, ec)) return as_path;
  for (const fs::path& dir : model_search_dirs()) {
    fs::path candidate = dir / (std::string(name_or_path) + ".json");
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  std::ostringstream msg;
  msg << "unknown model '" << name_or_path
      << "': not a path to a config.json or a model directory, and no such name";
  std::vector<std::string> known = known_model_names();
  if (known.empty()) {
    msg << " (no model folder found; set SLIDESPARSE_MODELS_DIR)";
  } else {
    msg << "; known models:";
    for (size_t i = 0; i < known.size(); ++i) msg << (i ? ", " : " ") << known[i];
  }
  throw Error(msg.str());
}

}  // namespace slidesparse
