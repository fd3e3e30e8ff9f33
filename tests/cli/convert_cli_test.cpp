// The convert / verify / make-model subcommands end to end through the real executable: exit
// status 0 on success, non-zero with a message naming the problem on failure.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

namespace fs = std::filesystem;

struct RunResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

RunResult run_cli(const std::string& args) {
  const std::string cmd = std::string(SS_CLI_PATH) + " " + args + " 2>&1";
  RunResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

class ConvertCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ss_cli_conv_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A tiny Llama derived from a shipped config: fewer layers, same family.
    std::ofstream(dir_ / "tiny.json") << R"({"architectures": ["LlamaForCausalLM"],
      "model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
      "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 3,
      "vocab_size": 32, "rms_norm_eps": 1e-5, "tie_word_embeddings": false})";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

#define EXPECT_HAS(haystack, needle)                                   \
  do {                                                                 \
    std::string h_ = (haystack);                                       \
    EXPECT_NE(h_.find(needle), std::string::npos) << "output: " << h_; \
  } while (0)

TEST_F(ConvertCli, MakeConvertVerify) {
  RunResult r = run_cli("make-model --config " + p("tiny.json") + " --layers 2 --out " + p("src") +
                        " --shards 2 --seed 5");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_HAS(r.output, "2 file(s)");
  EXPECT_TRUE(fs::exists(dir_ / "src" / "model.safetensors.index.json"));
  r = run_cli("convert --in " + p("src") + " --out " + p("out") + " --sparsity 2:6 --dtype fp8");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_HAS(r.output, "converted 14 linear weights");
  EXPECT_HAS(r.output, "peak RSS");
  r = run_cli("verify " + p("out") + " --source " + p("src"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_HAS(r.output, "OK");
  r = run_cli("verify " + p("out"));
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST_F(ConvertCli, MakeModelByName) {
  // Names resolve through models/ (tested in tests/io); a full-size embedding is too big for a
  // unit test, so only the error path runs here.
  RunResult r = run_cli("make-model --config No-Such-Model --layers 1 --out " + p("x"));
  EXPECT_NE(r.status, 0);
  EXPECT_HAS(r.output, "unknown model 'No-Such-Model'");
  EXPECT_HAS(r.output, "Llama3.2-1B");
  EXPECT_FALSE(fs::exists(dir_ / "x"));
}

TEST_F(ConvertCli, FailuresExitNonZeroWithTheReason) {
  ASSERT_EQ(run_cli("make-model --config " + p("tiny.json") + " --out " + p("src")).status, 0);
  RunResult r = run_cli("convert --in " + p("src") + " --out " + p("out") + " --sparsity 3:8");
  EXPECT_NE(r.status, 0);
  EXPECT_HAS(r.output, "invalid sparsity '3:8'");
  r = run_cli("convert --in " + p("src") + " --out " + p("out") + " --dtype int4");
  EXPECT_NE(r.status, 0);
  EXPECT_HAS(r.output, "int4");
  r = run_cli("convert --in " + p("src") + " --out " + p("out") + " --assume-pruned");
  EXPECT_NE(r.status, 0);
  EXPECT_HAS(r.output, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_HAS(r.output, "breaks 2:8");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  r = run_cli("verify " + p("src"));
  EXPECT_NE(r.status, 0);
  EXPECT_HAS(r.output, "not a SlideSparse checkpoint");

  // Tamper with a converted weight: a full group of 4.
  ASSERT_EQ(run_cli("convert --in " + p("src") + " --out " + p("out") + " -q").status, 0);
  {
    std::fstream io(dir_ / "out" / "model.safetensors",
                    std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header = 0;
    io.read(reinterpret_cast<char*>(&header), 8);
    std::string text(header, '\0');
    io.read(text.data(), static_cast<std::streamsize>(header));
    const auto j = nlohmann::json::parse(text);
    const uint64_t begin =
        j["model.layers.1.mlp.up_proj.weight"]["data_offsets"][0].get<uint64_t>();
    io.seekp(static_cast<std::streamoff>(8 + header + begin));
    const char ones[4] = {1, 1, 1, 1};
    io.write(ones, 4);
  }
  r = run_cli("verify " + p("out"));
  EXPECT_NE(r.status, 0);
  EXPECT_HAS(r.output, "model.layers.1.mlp.up_proj.weight");
  EXPECT_HAS(r.output, "2:4");
}

}  // namespace
