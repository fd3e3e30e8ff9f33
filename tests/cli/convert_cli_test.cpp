// The convert / verify / make-model subcommands end to end through the real executable: exit
// status 0 on success, non-zero with a message naming the problem on failure.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

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

// A write failure at --out: a plain error naming --out (exit 1), not "unexpected error" with the
// temporary folder's path.
TEST_F(ConvertCli, UnwritableOutNamesOut) {
  ASSERT_EQ(run_cli("make-model --config " + p("tiny.json") + " --out " + p("src")).status, 0);
  std::ofstream(dir_ / "plain") << "a file where a folder should be";
  for (const std::string cmd :
       {"convert --in " + p("src") + " --out " + p("plain/out"),
        "make-model --config " + p("tiny.json") + " --out " + p("plain/out")}) {
    const RunResult r = run_cli(cmd);
    EXPECT_EQ(r.status, 1) << cmd << "\n" << r.output;
    EXPECT_HAS(r.output, "cannot write --out " + p("plain/out"));
    EXPECT_EQ(r.output.find("unexpected error"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(".tmp-"), std::string::npos) << r.output;
  }
}

// Ctrl-C (SIGINT) and SIGTERM during convert: the run stops between tensors, removes its
// temporary output, leaves --out absent and exits 128 + the signal.
TEST_F(ConvertCli, InterruptRemovesTheTemporaryOutput) {
  std::ofstream(dir_ / "wide.json") << R"({"architectures": ["LlamaForCausalLM"],
    "model_type": "llama", "hidden_size": 1024, "intermediate_size": 2048,
    "num_attention_heads": 8, "num_key_value_heads": 8, "num_hidden_layers": 6,
    "vocab_size": 512, "rms_norm_eps": 1e-5, "tie_word_embeddings": false})";
  ASSERT_EQ(run_cli("make-model --config " + p("wide.json") + " --out " + p("src")).status, 0);
  for (const int signal_number : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    const fs::path log = dir_ / "convert.log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const std::string in = p("src"), out = p("out");
    std::vector<std::string> argv_text = {SS_CLI_PATH, "convert", "--in", in, "--out", out};
    std::vector<char*> argv;
    for (std::string& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, SS_CLI_PATH, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    // Signal once the second linear weight is done: mid-run, with a temporary folder on disk.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    bool started = false;
    while (!started && std::chrono::steady_clock::now() < deadline) {
      std::ifstream in_log(log);
      const std::string text((std::istreambuf_iterator<char>(in_log)), {});
      started = text.find("[2/") != std::string::npos;
      if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(started) << "convert printed no progress";
    ::kill(pid, signal_number);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    std::ifstream in_log(log);
    const std::string text((std::istreambuf_iterator<char>(in_log)), {});
    ASSERT_TRUE(WIFEXITED(status)) << "ended by the signal itself, not by the handler\n" << text;
    EXPECT_EQ(WEXITSTATUS(status), 128 + signal_number) << text;
    EXPECT_HAS(text, "interrupted; the partial output was removed");
    EXPECT_FALSE(fs::exists(dir_ / "out"));
    for (const auto& e : fs::directory_iterator(dir_))
      EXPECT_EQ(e.path().filename().string().rfind("out.", 0), std::string::npos) << e.path();
  }
}

}  // namespace
