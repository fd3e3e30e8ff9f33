// The GPU commands (bench kernel, bench quant, tune, tune compare) as a new user meets them: bad
// arguments are refused first, naming the argument, whatever the machine; then, with no GPU (here
// hidden with CUDA_VISIBLE_DEVICES=), each ends with an error and a non-zero exit status, never a
// "skipped" that exits 0. --dtype errors list only what the command accepts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "cli/run_cli.h"

namespace slidesparse {
namespace {

const std::string kNoGpu = "CUDA_VISIBLE_DEVICES=";

#define EXPECT_HAS(haystack, needle)                                   \
  do {                                                                 \
    const std::string h_ = (haystack);                                 \
    EXPECT_NE(h_.find(needle), std::string::npos) << "output: " << h_; \
  } while (0)
#define EXPECT_LACKS(haystack, needle)                                 \
  do {                                                                 \
    const std::string h_ = (haystack);                                 \
    EXPECT_EQ(h_.find(needle), std::string::npos) << "output: " << h_; \
  } while (0)

// A failure that names `needle` and is not the missing GPU (the arguments come first).
void expect_argument_error(const std::string& args, const std::string& needle) {
  SCOPED_TRACE(args);
  const test::CliResult r = test::run_cli(args, kNoGpu);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_HAS(r.output, needle);
  EXPECT_LACKS(r.output, "no CUDA GPU");
  EXPECT_LACKS(r.output, "unexpected error");
}

TEST(GpuCommands, WithoutAGpuEachExitsNonZeroWithTheReason) {
  for (const char* args : {"bench kernel --model Llama3.2-1B --M 64 --dtype int8 --sparsity 2:8",
                           "bench quant --M 64 --K 64 --dtype int8 --sparsity 2:8",
                           "tune --models Llama3.2-1B --M 64 --dtype int8 --sparsity 2:8",
                           "tune compare --models Llama3.2-1B --M 64 --dtype int8"}) {
    SCOPED_TRACE(args);
    const test::CliResult r = test::run_cli(args, kNoGpu);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_HAS(r.output, "no CUDA GPU is available");
    EXPECT_LACKS(r.output, "skipped");
  }
}

TEST(GpuCommands, UnknownModelsAreRefusedBeforeTheGpu) {
  expect_argument_error("bench kernel --model No-Such-Model", "unknown model 'No-Such-Model'");
  expect_argument_error("tune --models Llama3.2-1B,No-Such-Model", "unknown model 'No-Such-Model'");
  expect_argument_error("tune compare --models Llama3.2-1B,No-Such-Model",
                        "unknown model 'No-Such-Model'");
}

TEST(GpuCommands, BadPatternsAndNumbersAreRefusedBeforeTheGpu) {
  expect_argument_error("bench kernel --model Llama3.2-1B --sparsity 2:8,3:8",
                        "invalid sparsity '3:8'");
  expect_argument_error("bench quant --sparsity 2:7", "invalid sparsity '2:7'");
  expect_argument_error("tune --models Llama3.2-1B --sparsity 3:8", "invalid sparsity '3:8'");
  expect_argument_error("tune compare --models Llama3.2-1B --sparsity 3:8",
                        "invalid sparsity '3:8'");
  expect_argument_error("bench kernel --model Llama3.2-1B --M 0", "M must be >= 1");
  expect_argument_error("bench quant --M 64 --K 0", "M and K must be > 0");
  expect_argument_error("bench quant --config 256", "--config takes");
  expect_argument_error("tune --models Llama3.2-1B --M 0", "M must be >= 1");
  expect_argument_error("tune --models Llama3.2-1B --stage medium", "unknown tuning stage");
}

// An --out (or --tuning-dir) that cannot be written is refused before the run, naming it.
TEST(GpuCommands, UnwritableOutputFoldersAreRefusedFirst) {
  const std::string file =
      ::testing::TempDir() + "ss_gpu_commands_plain_" + std::to_string(::getpid());
  std::ofstream(file) << "a file where a folder should be";
  const std::string out = file + "/sub";
  expect_argument_error(
      "bench kernel --model Llama3.2-1B --out " + out,
      "bench kernel: cannot write --out " + out + ": " + file + " is not a folder");
  expect_argument_error("bench quant --out " + out, "bench quant: cannot write --out " + out);
  expect_argument_error("tune --models Llama3.2-1B --tuning-dir " + out,
                        "tune: cannot write --tuning-dir " + out);
  expect_argument_error("tune compare --models Llama3.2-1B --out " + out,
                        "tune compare: cannot write --out " + out);
  const test::CliResult r =
      test::run_cli("report " + std::string(SS_MODELS_DIR) + " --out " + out, kNoGpu);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_HAS(r.output, "report: cannot write --out " + out);
  std::remove(file.c_str());
}

TEST(GpuCommands, DtypeErrorsListOnlyWhatTheCommandAccepts) {
  for (const char* args : {"bench kernel --model Llama3.2-1B --dtype int8,fp16",
                           "tune --models Llama3.2-1B --dtype int4",
                           "tune compare --models Llama3.2-1B --dtype fp32"}) {
    SCOPED_TRACE(args);
    const test::CliResult r = test::run_cli(args, kNoGpu);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_HAS(r.output, "--dtype '");
    EXPECT_HAS(r.output, "accepted are int8, fp8, bf16");
    EXPECT_LACKS(r.output, "int32");
    EXPECT_LACKS(r.output, "no CUDA GPU");
  }
  const test::CliResult q = test::run_cli("bench quant --dtype bf16", kNoGpu);
  EXPECT_NE(q.exit_code, 0) << q.output;
  EXPECT_HAS(q.output, "bench quant: --dtype 'bf16' is not accepted: accepted are int8, fp8");
  const test::CliResult c = test::run_cli("convert --in . --out /nonexistent/x --dtype int4");
  EXPECT_NE(c.exit_code, 0) << c.output;
  EXPECT_HAS(c.output, "convert: --dtype 'int4' is not accepted: accepted are int8, fp8, bf16");
  const test::CliResult m =
      test::run_cli("make-model --config Llama3.2-1B --out /nonexistent/x --dtype int8");
  EXPECT_NE(m.exit_code, 0) << m.output;
  EXPECT_HAS(m.output, "make-model: --dtype 'int8' is not accepted: accepted are bf16, fp16, fp32");
  const test::CliResult w =
      test::run_cli("make-model --config Llama3.2-1B --out /nonexistent/x --weight-quant bf16");
  EXPECT_HAS(w.output, "--weight-quant 'bf16' is not accepted: accepted are int8, fp8");
}

}  // namespace
}  // namespace slidesparse
