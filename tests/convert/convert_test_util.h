// Shared helpers of the converter tests: a scratch directory per test, tiny configs, and byte-level
// tampering of a tensor inside a safetensors file.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "io/safetensors.h"

namespace slidesparse::test {

namespace fs = std::filesystem;

class ScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name)
      if (c == '/') c = '_';
    dir_ = fs::temp_directory_path() / ("ss_conv_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// hidden 64, intermediate 100 (K of down_proj is not a multiple of L: exercises K_pad).
inline nlohmann::json tiny_config(const std::string& family, bool bias = false) {
  nlohmann::json j = {
      {"hidden_size", 64},        {"intermediate_size", 100}, {"num_attention_heads", 4},
      {"num_key_value_heads", 2}, {"num_hidden_layers", 2},   {"vocab_size", 40},
      {"rms_norm_eps", 1e-5},     {"rope_theta", 10000.0},    {"torch_dtype", "bfloat16"}};
  if (family == "qwen2") {
    j["architectures"] = {"Qwen2ForCausalLM"};
    j["model_type"] = "qwen2";
    j["tie_word_embeddings"] = false;
  } else {
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    j["tie_word_embeddings"] = true;
    j["attention_bias"] = bias;
    j["mlp_bias"] = bias;
  }
  return j;
}

inline fs::path write_config(const fs::path& dir, const nlohmann::json& j,
                             const std::string& name = "tiny.json") {
  std::ofstream(dir / name) << j.dump();
  return dir / name;
}

// Overwrites `count` bytes of tensor `name` at byte `offset` inside its file in `dir`.
inline void poke_tensor(const fs::path& dir, const std::string& name, int64_t offset,
                        const void* bytes, size_t count) {
  fs::path file;
  uint64_t at = 0;
  {
    Checkpoint c(dir);
    const SafetensorsFile& f = c.file_of(name);
    file = f.path();
    at = f.header().data_offset() + static_cast<uint64_t>(f.info(name).begin + offset);
  }
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(static_cast<std::streamoff>(at));
  io.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(count));
}

// Directory entries of `dir` whose name starts with `prefix` (leftover temporaries).
inline int count_entries_with_prefix(const fs::path& dir, const std::string& prefix) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
  return n;
}

}  // namespace slidesparse::test
