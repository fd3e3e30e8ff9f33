// `slidesparse bench prefill|decode` through the built program: every bad argument is refused,
// naming the option, before any GPU is looked for; with good arguments and no GPU it says
// "skipped: no GPU" and exits as `slidesparse tune` does without one, writing nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli/run_cli.h"
#include "common/temp_dir.h"
#include "cuda/device_info.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

constexpr int kCliValidationExitCode = 105;  // CLI11's ValidationError

TEST(BenchThroughputCli, RefusesBadArgumentsBeforeLookingForAGpu) {
  const struct {
    const char* args;
    const char* names;
  } cases[] = {
      {"prefill --model NoSuchModel --dtype int8 --backend cublaslt --M 512", "--model"},
      {"prefill --model Llama3.2-1B --dtype fp32 --backend cublaslt --M 512", "--dtype"},
      {"prefill --model Llama3.2-1B --dtype int8 --backend cublas --M 512", "--backend"},
      {"prefill --model Llama3.2-1B --dtype int8 --backend cusparselt --M 512", "--sparsity"},
      {"prefill --model Llama3.2-1B --dtype int8 --backend cusparselt --sparsity 3:8 --M 512",
       "--sparsity"},
      {"decode --model Llama3.2-1B --dtype int8 --backend cublaslt --sparsity 2:4 --M 64",
       "--sparsity"},
      {"decode --model Llama3.2-1B --dtype int8 --backend cublaslt --M 64,0", "--M"},
      {"decode --model Llama3.2-1B --dtype int8 --backend cublaslt --M 64 --stage prefill",
       "--stage"},
      {"decode --model Llama3.2-1B --dtype int8 --backend cublaslt --M 64 --repeats 0",
       "--repeats"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(std::string("bench ") + c.args);
    EXPECT_EQ(r.exit_code, kCliValidationExitCode) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("no GPU"), std::string::npos) << c.args << "\n" << r.output;
  }
  // Missing required options are CLI11's own refusals.
  const auto missing = run_cli("bench prefill --model Llama3.2-1B --dtype int8 --M 512");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("--backend"), std::string::npos) << missing.output;
}

TEST(BenchThroughputCli, WithoutAGpuSaysSoAndExitsAsTuneDoes) {
  if (gpu_available()) GTEST_SKIP() << "a GPU is present: the benchmark would run";
  const auto tune = run_cli("tune --models Llama3.2-1B --dtype int8");
  ASSERT_NE(tune.exit_code, 0) << tune.output;
  test::TempDir dir("ss_bench_cli_");
  const std::string json_dir = (dir.path() / "json").string();
  const std::string marker = (dir.path() / "marker").string();
  for (const std::string phase : {"prefill", "decode"}) {
    const auto r = run_cli("bench " + phase +
                           " --model Llama3.2-1B --dtype fp8 --backend cusparselt --sparsity 2:8 "
                           "--M 64,128 --json-dir " +
                           json_dir + " --case-marker " + marker);
    EXPECT_EQ(r.exit_code, tune.exit_code) << r.output;
    EXPECT_NE(r.output.find("bench " + phase + ": skipped: no GPU"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(json_dir));
    EXPECT_FALSE(fs::exists(marker));
  }
}

}  // namespace
}  // namespace slidesparse
