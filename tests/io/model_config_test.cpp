// config.json parsing: the four shipped configs, defaults, family detection, and a clear
// FormatError naming the key for every missing or bad value.
#include "io/model_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

nlohmann::json tiny_llama() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 128,
    "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
    "num_hidden_layers": 2, "vocab_size": 512, "max_position_embeddings": 1024,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16"})");
}

std::string error_of(const nlohmann::json& j) {
  try {
    ModelConfig::from_json(j, "tiny");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ShippedConfigsGiveTheSeedShapes) {
  struct Expect {
    const char* name;
    int64_t qkv_n, o_k, gate_up_n, down_k, hidden;
  };
  for (Expect e : {Expect{"Llama3.2-1B", 3072, 2048, 16384, 8192, 2048},
                   Expect{"Llama3.2-3B", 5120, 3072, 16384, 8192, 3072},
                   Expect{"Qwen2.5-7B", 4608, 3584, 37888, 18944, 3584},
                   Expect{"Qwen2.5-14B", 7168, 5120, 27648, 13824, 5120}}) {
    ModelConfig c = ModelConfig::load(fs::path(SS_MODELS_DIR) / (std::string(e.name) + ".json"));
    EXPECT_EQ(c.name, e.name);
    auto shapes = benchmark_linear_shapes(c);
    ASSERT_EQ(shapes.size(), 4u);
    EXPECT_EQ(shapes[0].name, "qkv");
    EXPECT_EQ(shapes[0].n, e.qkv_n) << e.name;
    EXPECT_EQ(shapes[0].k, e.hidden) << e.name;
    EXPECT_EQ(shapes[1].n, e.hidden) << e.name;
    EXPECT_EQ(shapes[1].k, e.o_k) << e.name;
    EXPECT_EQ(shapes[2].n, e.gate_up_n) << e.name;
    EXPECT_EQ(shapes[2].k, e.hidden) << e.name;
    EXPECT_EQ(shapes[3].n, e.hidden) << e.name;
    EXPECT_EQ(shapes[3].k, e.down_k) << e.name;
  }
}

TEST(ModelConfig, LlamaFieldsAndRope) {
  ModelConfig c = resolve_model("Llama3.2-1B");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.num_hidden_layers, 16);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling->factor, 32.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
}

TEST(ModelConfig, Qwen2DefaultsHeadDimAndBiases) {
  ModelConfig c = resolve_model("Qwen2.5-7B");
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.head_dim, 3584 / 28);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
}

TEST(ModelConfig, AnySizeOfTheFamily) {
  nlohmann::json j = tiny_llama();
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  j.erase("num_key_value_heads");
  j["torch_dtype"] = "float16";
  ModelConfig c = ModelConfig::from_json(j, "tiny");
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_EQ(c.torch_dtype, DType::kF16);
  // Family from architectures alone.
  j.erase("model_type");
  j["architectures"] = {"Qwen2ForCausalLM"};
  EXPECT_EQ(ModelConfig::from_json(j, "tiny").model_type, "qwen2");
}

TEST(ModelConfig, MissingOrBadKeysNameTheKey) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_attention_heads",
                          "num_hidden_layers", "vocab_size"}) {
    nlohmann::json j = tiny_llama();
    j.erase(key);
    std::string msg = error_of(j);
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tiny"), std::string::npos) << msg;
  }
  nlohmann::json j = tiny_llama();
  j["hidden_size"] = "big";
  EXPECT_NE(error_of(j).find("hidden_size"), std::string::npos);
  j = tiny_llama();
  j["hidden_size"] = -4;
  EXPECT_NE(error_of(j).find("positive"), std::string::npos);
  j = tiny_llama();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j).find("num_key_value_heads"), std::string::npos);
  j = tiny_llama();
  j["torch_dtype"] = "int8";
  EXPECT_NE(error_of(j).find("torch_dtype"), std::string::npos);
  j = tiny_llama();
  j["rope_scaling"] = {{"factor", 2.0}};
  EXPECT_NE(error_of(j).find("rope_scaling"), std::string::npos);
  EXPECT_NE(error_of(nlohmann::json::array()).find("object"), std::string::npos);
}

TEST(ModelConfig, OtherFamiliesAreRefused) {
  nlohmann::json j = tiny_llama();
  j["model_type"] = "mistral";
  j["architectures"] = {"MistralForCausalLM"};
  std::string msg = error_of(j);
  EXPECT_NE(msg.find("mistral"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Llama"), std::string::npos) << msg;
}

TEST(ModelConfig, LoadFromDirectoryUsesItsName) {
  fs::path dir =
      fs::temp_directory_path() / ("ss_cfg_test_" + std::to_string(::getpid())) / "My-Tiny";
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << tiny_llama().dump();
  ModelConfig c = resolve_model(dir.string());
  EXPECT_EQ(c.name, "My-Tiny");
  EXPECT_EQ(c.hidden_size, 128);
  std::ofstream(dir / "config.json") << "{ not json";
  EXPECT_THROW(ModelConfig::load(dir), FormatError);
  fs::remove_all(dir.parent_path());
}

TEST(ModelConfig, UnknownNameListsKnownOnes) {
  try {
    resolve_model("No-Such-Model");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("No-Such-Model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Qwen2.5-14B"), std::string::npos) << msg;
  }
}

TEST(ModelConfig, ModelsDirFromEnvironment) {
  fs::path dir = fs::temp_directory_path() / ("ss_cfg_env_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "Env-Tiny.json") << tiny_llama().dump();
  ::setenv("SLIDESPARSE_MODELS_DIR", dir.c_str(), 1);
  ModelConfig c = resolve_model("Env-Tiny");
  EXPECT_EQ(c.name, "Env-Tiny");
  ::unsetenv("SLIDESPARSE_MODELS_DIR");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace slidesparse
