// The prefill / decode benchmarks on a GPU: NVML energy over a window, the CUDA context check on
// a healthy context, the host record, and `slidesparse bench prefill|decode` end to end on the
// engine (a small Llama of random weights, and Llama3.2-1B at one M), reading back the case JSONs.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bench/energy_meter.h"
#include "bench/throughput_bench.h"
#include "cli/run_cli.h"
#include "common/gpu_skip.h"
#include "common/temp_dir.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

TEST(ThroughputGpu, NvmlMeasuresEnergyOverAWindow) {
  SS_SKIP_WITHOUT_GPU();
  NvmlEnergyMeter meter;
  ASSERT_TRUE(meter.available()) << meter.note();
  ASSERT_TRUE(meter.driver_version());
  EXPECT_FALSE(meter.driver_version()->empty());
  meter.start();
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const double window_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const EnergyReading r = meter.stop(window_s);
  ASSERT_TRUE(r.energy_j) << r.note;
  ASSERT_TRUE(r.avg_power_w) << r.note;
  EXPECT_GT(*r.energy_j, 0);
  EXPECT_GT(*r.avg_power_w, 5);  // an idle data-centre GPU still draws tens of watts
  EXPECT_LT(*r.avg_power_w, 2000);
  EXPECT_GE(r.power_samples, 10);
  EXPECT_FALSE(r.source.empty());
}

TEST(ThroughputGpu, HealthyContextHasNoFaultAndTheHostIsNamed) {
  SS_SKIP_WITHOUT_GPU();
  EXPECT_FALSE(cuda_context_fault());
  const HostRecord host = query_host_record(std::nullopt);
  EXPECT_FALSE(host.gpu_name.empty());
  EXPECT_GE(host.cc, 70);
  EXPECT_EQ(host.toolchain.rfind("cuda", 0), 0u) << host.toolchain;
  EXPECT_NE(host.hardware_key.find("_cc"), std::string::npos) << host.hardware_key;
}

class ThroughputCliGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    // Small but on the engine's usual paths: head_dim 128, GQA, K multiples of 64.
    std::ofstream(dir_.path() / "small.json") << R"({"architectures": ["LlamaForCausalLM"],
      "model_type": "llama", "hidden_size": 512, "intermediate_size": 1024,
      "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 128,
      "num_hidden_layers": 2, "vocab_size": 2048, "max_position_embeddings": 4096,
      "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false})";
  }
  std::string config() const { return (dir_.path() / "small.json").string(); }
  fs::path json_dir(const std::string& name) const { return dir_.path() / name; }

  void expect_ok_case(const fs::path& file, int64_t batch, int64_t prompt_len, int64_t output_len) {
    const json j = read_json(file);
    ASSERT_EQ(j["status"], "ok") << j.dump(1);
    const json& m = j["metrics"];
    EXPECT_EQ(m["batch"], batch);
    EXPECT_EQ(m["prompt_len"], prompt_len);
    EXPECT_EQ(m["output_len"], output_len);
    EXPECT_GT(m["tokens_per_s"].get<double>(), 0);
    EXPECT_GT(m["step_ms_median"].get<double>(), 0);
    const double elapsed = m["elapsed_s"].get<double>();
    EXPECT_NEAR(m["tokens_per_s"].get<double>() * elapsed,
                static_cast<double>(batch * (prompt_len + output_len)), 1e-6 * batch * prompt_len);
    EXPECT_TRUE(m["joules_per_token"].is_number()) << m.dump(1);
    EXPECT_FALSE(j["gpu"]["driver"].is_null());
  }

  test::TempDir dir_{"ss_bench_gpu_"};
};

TEST_F(ThroughputCliGpu, PrefillAndDecodeOnTheEngine) {
  SS_SKIP_WITHOUT_GPU();
  const std::string marker = (dir_.path() / "marker").string();
  auto r = test::run_cli("bench prefill --model " + config() +
                         " --dtype int8 --backend cublaslt --M 16,2048 --min-time 0.1 "
                         "--json-dir " +
                         json_dir("prefill").string() + " --case-marker " + marker);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("tokens/s"), std::string::npos) << r.output;
  expect_ok_case(json_dir("prefill") / "small_M16.json", 1, 16, 1);
  expect_ok_case(json_dir("prefill") / "small_M2048.json", 2, 1024, 1);
  EXPECT_FALSE(fs::exists(marker));

  r = test::run_cli("bench decode --model " + config() +
                    " --dtype bf16 --backend cublaslt --M 4,8 --repeats 1 --json-dir " +
                    json_dir("decode").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_ok_case(json_dir("decode") / "small_M8.json", 8, 16, 256);
}

TEST_F(ThroughputCliGpu, SlideSparseFp8OnARealModelShape) {
  SS_SKIP_WITHOUT_GPU();
  const auto r = test::run_cli(
      "bench prefill --model Llama3.2-1B --dtype fp8 --backend cusparselt --sparsity 2:8 --M 1024 "
      "--warmup 1 --repeats 3 --json-dir " +
      json_dir("sparse").string());
  const fs::path file = json_dir("sparse") / "Llama3.2-1B_M1024.json";
  ASSERT_TRUE(fs::exists(file)) << r.output;
  const json j = read_json(file);
  if (j["status"] == "skipped") GTEST_SKIP() << j["skip_reason"];  // FP8 below cc 8.9
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_ok_case(file, 1, 1024, 1);
  EXPECT_EQ(j["sparsity"], "2:8");
}

}  // namespace
}  // namespace slidesparse
