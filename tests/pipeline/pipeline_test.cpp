// prepare-bench's machinery on the CPU, with a fake case runner (fake_runner.h) in place of the
// benchmarks: the result layout, run.json, CSVs rebuilt from the JSONs, isolation of a crashing
// and of a hanging case, a sticky fault, a child that dies before its first case, resume after
// the pipeline is killed, reruns that never erase an ok result, FP8 below cc 8.9, the time
// budget, the tuning tasks, and the CLI (dry run, no GPU, report at the end).
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../cli/run_cli.h"
#include "../common/temp_dir.h"
#include "fake_runner.h"
#include "pipeline/case_store.h"
#include "pipeline/child_process.h"
#include "pipeline/plan.h"
#include "pipeline/run_record.h"
#include "slidesparse/build_info.h"
#include "slidesparse/error.h"

namespace slidesparse::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in) << "cannot open " << file;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const fs::path& file) {
  std::vector<std::string> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const char* kFakeVars[] = {"FAKE_CRASH",      "FAKE_HANG",     "FAKE_FAIL",  "FAKE_STICKY",
                           "FAKE_EXIT_EARLY", "FAKE_ONCE_DIR", "FAKE_SLEEP", "FAKE_CC",
                           "FAKE_HW_KEY",     "FAKE_CALLS",    "FAKE_BUILD"};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* var : kFakeVars) ::unsetenv(var);
    runner_ = test::write_fake_runner(dir_.path());
    calls_ = dir_.path() / "calls.txt";
    ::setenv("FAKE_CALLS", calls_.c_str(), 1);
    hw_ = fake_run_hardware("NVIDIA H200", 90);
    ::setenv("FAKE_HW_KEY", hw_.hardware_key.c_str(), 1);
    fs::create_directories(dir_.path() / "once");
  }
  void TearDown() override {
    for (const char* var : kFakeVars) ::unsetenv(var);
  }

  PipelineOptions options() const {
    PipelineOptions o;
    o.models = {"Llama3.2-1B"};
    o.dtypes = {"int8"};
    o.backends = {"cublaslt"};
    o.tasks = {6};
    o.prefill_m = {512, 1024, 2048};
    o.decode_m = {64};
    o.results_dir = dir_.path() / "results";
    o.tuning_dir = dir_.path() / "tuning";
    o.runner = runner_;
    o.case_timeout_s = 20;
    o.hardware = hw_;
    return o;
  }
  PipelineResult run(const PipelineOptions& o) {
    std::ostringstream out;
    PipelineResult r = run_pipeline(o, out);
    output_ = out.str();
    return r;
  }
  fs::path prefill_dir(const std::string& dtype = "INT8", const std::string& backend = "cublaslt") {
    return dir_.path() / "results" / "prefill" / ("H200_cc90_" + dtype + "_cuda13.0") / backend;
  }
  std::vector<std::string> bench_calls() {
    std::vector<std::string> out;
    for (const std::string& line : read_lines(calls_))
      if (line.rfind("bench ", 0) == 0) out.push_back(line);
    return out;
  }

  test::TempDir dir_{"ss_pipeline_"};
  fs::path runner_;
  fs::path calls_;
  RunHardware hw_;
  std::string output_;
};

// ---- plan and naming -------------------------------------------------------------------------

TEST(PipelinePlan, BackendsParse) {
  const auto all = parse_backends({"cublaslt", "cublaslt-fa", "cusparselt", "2_8"});
  ASSERT_EQ(all.size(), 6u);  // 2:8 once
  EXPECT_EQ(all[2].variant(), "2:4");
  EXPECT_EQ(all[5].variant(), "2:10");
  EXPECT_EQ(all[4].folder(), fs::path("cusparselt") / "2_8");
  EXPECT_EQ(all[1].folder(), fs::path("cublaslt-fa"));
  EXPECT_THROW(parse_backends({"cublas"}), Error);
  EXPECT_THROW(parse_backends({"3:8"}), Error);
}

TEST(PipelinePlan, OptionsAreChecked) {
  PipelineOptions o;
  o.models = {"models/Llama3.2-1B.json"};
  EXPECT_THROW(validate_options(o), Error);
  o = PipelineOptions{};
  o.models = {"NoSuchModel"};
  EXPECT_THROW(validate_options(o), Error);
  o = PipelineOptions{};
  o.tasks = {8};
  EXPECT_THROW(validate_options(o), Error);
  o = PipelineOptions{};
  o.dtypes = {"fp16"};
  EXPECT_THROW(validate_options(o), Error);
  EXPECT_NO_THROW(validate_options(PipelineOptions{}));
}

TEST(PipelinePlan, GroupsAndNames) {
  PipelineOptions o;
  o.results_dir = "res";
  const RunHardware a100 = fake_run_hardware("NVIDIA A100-SXM4-80GB", 80);
  EXPECT_EQ(a100.result_folder("fp8"), "A100-SXM4-80GB_cc80_FP8_cuda13.0");
  EXPECT_EQ(a100.hardware_key, "NVIDIA_A100_SXM4_80GB_cc80_cuda13.0_cublaslt130100_cusparselt800");
  const Plan plan = build_plan(o, fake_run_hardware("NVIDIA H200", 90));
  ASSERT_EQ(plan.tune_tasks.size(), 2u);
  EXPECT_TRUE(plan.tune_tasks[0].fast_accum);
  EXPECT_EQ(plan.tune_tasks[1].sparsities, (std::vector<std::string>{"2:4", "2:6", "2:8", "2:10"}));
  // 5: 2 dtypes x 6 backends x 2 phases; 6 and 7: 2 x 4 models x 6.
  EXPECT_EQ(plan.groups.size(), 24u + 48u + 48u);
  int64_t cases = 0, skipped_by_pipeline = 0;
  for (const BenchGroup& g : plan.groups) {
    cases += static_cast<int64_t>(g.ms.size());
    if (!g.skip_reason.empty()) skipped_by_pipeline += static_cast<int64_t>(g.ms.size());
  }
  EXPECT_EQ(cases, 24 + 2 * 4 * 6 * 8 + 2 * 4 * 6 * 4);
  EXPECT_EQ(skipped_by_pipeline, 2 + 4 * 8 + 4 * 4);  // int8 with cublaslt-fa
  const BenchGroup& simple = plan.groups.front();
  EXPECT_EQ(simple.case_file(512), "Llama3.2-1B_prefill_M512.json");
  EXPECT_EQ(simple.folder, fs::path("res/simple/H200_cc90_INT8_cuda13.0/cublaslt"));
  const BenchGroup& prefill = plan.groups[24];
  EXPECT_EQ(prefill.case_file(4096), "Llama3.2-1B_M4096.json");
  const std::vector<std::string> argv =
      bench_argv("/bin/ss", plan.groups[24 + 5], {512, 1024}, "j", "mk");
  EXPECT_EQ(shell_join(argv),
            "/bin/ss bench prefill --model Llama3.2-1B --dtype int8 --backend cusparselt "
            "--sparsity 2:10 --M 512,1024 --stage prefill --task 6 --json-dir j --case-marker mk");
  EXPECT_EQ(shell_join({"a b", "it's", "x"}), "'a b' 'it'\\''s' x");
}

TEST(PipelinePlan, Fp8LeftOutOfTuningBelowCc89) {
  PipelineOptions o;
  o.tasks = {3, 4};
  const Plan plan = build_plan(o, fake_run_hardware("NVIDIA A100-SXM4-80GB", 80));
  ASSERT_EQ(plan.tune_tasks.size(), 2u);
  EXPECT_EQ(plan.tune_tasks[0].dtypes, std::vector<std::string>{"int8"});
  EXPECT_FALSE(plan.tune_tasks[0].fast_accum);
}

TEST(PipelineChild, KillsTheWholeGroupAndReportsSignals) {
  // The child starts a grandchild that would hold the pipe open; killing the group ends both.
  ChildProcess child({"/bin/sh", "-c", "echo start; sleep 1000 & wait"}, {});
  std::vector<std::string> lines;
  const auto t0 = std::chrono::steady_clock::now();
  while (lines.empty() && child.poll(100, lines)) {
  }
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "start");
  child.kill_group();
  const ExitStatus status = child.wait(lines);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  ASSERT_TRUE(status.signal.has_value());
  EXPECT_EQ(status.describe(), "signal 9 (SIGKILL)");

  ChildProcess segv({"/bin/sh", "-c", "kill -SEGV $$"}, {});
  EXPECT_EQ(segv.wait(lines).describe(), "signal 11 (SIGSEGV)");
  ChildProcess env({"/bin/sh", "-c", "echo $SS_TEST_VALUE; exit 4"}, {{"SS_TEST_VALUE", "x y"}});
  std::vector<std::string> env_lines;
  EXPECT_EQ(env.wait(env_lines).describe(), "exit code 4");
  ASSERT_EQ(env_lines.size(), 1u);
  EXPECT_EQ(env_lines[0], "x y");
  ChildProcess missing({"/nonexistent/program"}, {});
  EXPECT_EQ(missing.wait(lines).describe(), "exit code 127");
}

// ---- the result layout, run.json, CSVs -------------------------------------------------------

TEST_F(PipelineTest, LayoutRunRecordAndCsvs) {
  PipelineOptions o = options();
  o.dtypes = {"int8", "fp8"};
  o.backends = {"cublaslt", "cublaslt-fa", "2:8"};
  o.tasks = {5, 6, 7};
  o.prefill_m = {512, 1024};
  const PipelineResult r = run(o);
  EXPECT_EQ(r.exit_code, kExitOk) << output_;
  EXPECT_TRUE(r.finished);
  // 5: 2 dtypes x 3 backends x 2 phases; 6: x 2 Ms; 7: x 1 M. int8 cublaslt-fa: 4 skipped.
  EXPECT_EQ(r.ok + r.skipped, 12 + 12 + 6);
  EXPECT_EQ(r.skipped, 5);
  EXPECT_EQ(r.failed, 0);

  const fs::path results = o.results_dir;
  const fs::path sparse = results / "prefill" / "H200_cc90_FP8_cuda13.0" / "cusparselt" / "2_8";
  EXPECT_TRUE(fs::is_regular_file(sparse / "json" / "Llama3.2-1B_M1024.json"));
  EXPECT_TRUE(fs::is_regular_file(sparse / "Llama3.2-1B.csv"));
  EXPECT_TRUE(fs::is_regular_file(results / "decode" / "H200_cc90_INT8_cuda13.0" / "cublaslt" /
                                  "json" / "Llama3.2-1B_M64.json"));
  EXPECT_TRUE(fs::is_regular_file(results / "simple" / "H200_cc90_FP8_cuda13.0" / "cublaslt-fa" /
                                  "json" / "Llama3.2-1B_decode_M64.json"));
  EXPECT_TRUE(fs::is_regular_file(results / "logs" / "prepare-bench.log"));
  EXPECT_FALSE(fs::exists(results / ".staging" / "prefill" / "H200_cc90_FP8_cuda13.0" /
                          "cusparselt" / "2_8" / "json" / ".case-marker"));

  // INT8 with fast accumulation: skipped by the pipeline itself, no child.
  const json fa = read_json(prefill_dir("INT8", "cublaslt-fa") / "json" / "Llama3.2-1B_M512.json");
  EXPECT_EQ(fa["schema"], "slidesparse.case/1");
  EXPECT_EQ(fa["status"], "skipped");
  EXPECT_NE(fa["skip_reason"].get<std::string>().find("FP8 GEMMs only"), std::string::npos);
  EXPECT_EQ(fa["hardware_key"], hw_.hardware_key);
  EXPECT_EQ(fa["gpu"]["cc"], "9.0");
  EXPECT_EQ(fa["backend"], "cublaslt-fa");
  EXPECT_EQ(fa["build"], build_info().id());  // written by prepare-bench: its own build
  EXPECT_TRUE(fa["sparsity"].is_null());
  for (const std::string& call : bench_calls())
    EXPECT_EQ(call.find("int8 cublaslt-fa"), std::string::npos) << call;
  // One child per group, all its Ms at once.
  EXPECT_EQ(bench_calls().size(), 10u + 5u + 5u);
  bool saw_group = false;
  for (const std::string& call : bench_calls())
    if (call == "bench prefill Llama3.2-1B fp8 2:8 M=512,1024") saw_group = true;
  EXPECT_TRUE(saw_group);

  const json run_json = read_json(results / "run.json");
  EXPECT_EQ(run_json["schema"], "slidesparse.run/1");
  EXPECT_EQ(run_json["hardware_key"], hw_.hardware_key);
  EXPECT_EQ(run_json["gpu"]["name"], "NVIDIA H200");
  EXPECT_EQ(run_json["gpu"]["cc"], "9.0");
  EXPECT_EQ(run_json["versions"]["cuda"], "13.0");
  EXPECT_EQ(run_json["versions"]["cublaslt"], 130100);
  EXPECT_TRUE(run_json["finished_at"].is_string());
  EXPECT_TRUE(run_json["started_at"].is_string());
  EXPECT_EQ(run_json["builds"], json::array({build_info().id()}));
  ASSERT_EQ(run_json["tasks"].size(), 3u);
  const json& prefill = run_json["tasks"][1];
  EXPECT_EQ(prefill["id"], 6);
  EXPECT_EQ(prefill["name"], "prefill");
  EXPECT_EQ(prefill["status"], "succeeded");
  EXPECT_EQ(prefill["ok"], 10);
  EXPECT_EQ(prefill["skipped"], 2);
  EXPECT_EQ(prefill["failed"], 0);
  EXPECT_GT(prefill["gpu_s"].get<double>(), 0.0);
  EXPECT_GE(prefill["wall_s"].get<double>(), prefill["gpu_s"].get<double>() * 0.5);

  // The CSV: the fixture's columns first, then the metrics.
  const std::vector<std::string> csv = read_lines(sparse / "Llama3.2-1B.csv");
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[0].rfind("model,M,status,tokens_per_s,", 0), 0u) << csv[0];
  EXPECT_EQ(csv[1].rfind("Llama3.2-1B,512,ok,5120.0,", 0), 0u) << csv[1];
  EXPECT_EQ(csv[2].rfind("Llama3.2-1B,1024,ok,10240.0,", 0), 0u) << csv[2];
  const std::vector<std::string> simple_csv =
      read_lines(results / "simple" / "H200_cc90_INT8_cuda13.0" / "cublaslt" / "Llama3.2-1B.csv");
  ASSERT_EQ(simple_csv.size(), 3u);
  EXPECT_EQ(simple_csv[0].rfind("model,phase,M,status,", 0), 0u);
  EXPECT_EQ(simple_csv[1].rfind("Llama3.2-1B,prefill,512,ok,", 0), 0u);
  EXPECT_EQ(simple_csv[2].rfind("Llama3.2-1B,decode,64,ok,", 0), 0u);

  // The report reads all of it (the program's `report` on this folder).
  const test::CliResult report = test::run_cli("report '" + results.string() + "'");
  EXPECT_EQ(report.exit_code, 0) << report.output;
  const std::string md = read_text(results / "report.md");
  EXPECT_NE(md.find("Llama3.2-1B"), std::string::npos);

  // A second call: a new run (the first finished), nothing to run, task recorded skipped.
  fs::remove(calls_);
  const PipelineResult again = run(o);
  EXPECT_EQ(again.exit_code, kExitOk);
  EXPECT_TRUE(bench_calls().empty());
  const json second = read_json(results / "run.json");
  EXPECT_EQ(second["tasks"][1]["status"], "skipped");
  EXPECT_NE(second["tasks"][1]["note"].get<std::string>().find("all outputs exist"),
            std::string::npos);
  EXPECT_EQ(second["tasks"][1]["ok"], 10);
}

// ---- isolation -------------------------------------------------------------------------------

TEST_F(PipelineTest, CrashingCaseIsRecordedAndTheRestRunsInAFreshChild) {
  ::setenv("FAKE_CRASH", "prefill/Llama3.2-1B/int8/cublaslt/1024", 1);
  const PipelineOptions o = options();
  const PipelineResult r = run(o);
  EXPECT_EQ(r.exit_code, kExitFailures) << output_;
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ok, 2);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(bench_calls(),
            (std::vector<std::string>{"bench prefill Llama3.2-1B int8 cublaslt M=512,1024,2048",
                                      "bench prefill Llama3.2-1B int8 cublaslt M=2048"}));
  const json failed = read_json(prefill_dir() / "json" / "Llama3.2-1B_M1024.json");
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["error"]["type"], "Crash");
  const std::string message = failed["error"]["message"];
  EXPECT_NE(message.find("signal 11 (SIGSEGV)"), std::string::npos) << message;
  EXPECT_NE(message.find("fake: crashing"), std::string::npos) << message;  // last output
  EXPECT_EQ(failed["error"]["signal"], 11);
  const std::string command = failed["command"];
  EXPECT_NE(command.find(runner_.string() + " bench prefill --model Llama3.2-1B --dtype int8 "
                                            "--backend cublaslt --M 1024 --stage prefill --task 6"),
            std::string::npos)
      << command;
  EXPECT_EQ(failed["error"]["rerun"], command);
  EXPECT_EQ(failed["M"], 1024);
  EXPECT_EQ(failed["stage"], "prefill");
  EXPECT_EQ(failed["task"], 6);
  EXPECT_EQ(failed["model"], "Llama3.2-1B");
  EXPECT_EQ(failed["hardware_key"], hw_.hardware_key);
  EXPECT_EQ(failed["gpu"]["name"], "NVIDIA H200");
  EXPECT_EQ(read_json(prefill_dir() / "json" / "Llama3.2-1B_M2048.json")["status"], "ok");
  const json run_json = read_json(o.results_dir / "run.json");
  EXPECT_EQ(run_json["tasks"][0]["status"], "partly_failed");
  EXPECT_NE(run_json["tasks"][0]["note"].get<std::string>().find("1 Crash"), std::string::npos);
  const std::vector<std::string> csv = read_lines(prefill_dir() / "Llama3.2-1B.csv");
  ASSERT_EQ(csv.size(), 4u);
  EXPECT_EQ(csv[2].rfind("Llama3.2-1B,1024,failed,", 0), 0u);
  EXPECT_NE(csv[2].find("Crash"), std::string::npos);

  // The next call retries the failed case only (it passes now).
  ::unsetenv("FAKE_CRASH");
  fs::remove(calls_);
  EXPECT_EQ(run(o).exit_code, kExitOk);
  EXPECT_EQ(bench_calls(),
            (std::vector<std::string>{"bench prefill Llama3.2-1B int8 cublaslt M=1024"}));
  EXPECT_EQ(read_json(prefill_dir() / "json" / "Llama3.2-1B_M1024.json")["status"], "ok");
}

TEST_F(PipelineTest, HangingCaseTimesOutAndTheRestRuns) {
  ::setenv("FAKE_HANG", "prefill/Llama3.2-1B/int8/cublaslt/512", 1);
  PipelineOptions o = options();
  o.case_timeout_s = 1.5;
  const auto t0 = std::chrono::steady_clock::now();
  const PipelineResult r = run(o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 15.0);
  EXPECT_EQ(r.exit_code, kExitFailures) << output_;
  EXPECT_EQ(r.ok, 2);
  const json failed = read_json(prefill_dir() / "json" / "Llama3.2-1B_M512.json");
  EXPECT_EQ(failed["error"]["type"], "Timeout");
  EXPECT_NE(failed["error"]["message"].get<std::string>().find("process group killed"),
            std::string::npos);
  EXPECT_NE(failed["command"].get<std::string>().find("--M 512 "), std::string::npos);
  EXPECT_GE(failed["wall_s"].get<double>(), 1.4);
  EXPECT_EQ(bench_calls(),
            (std::vector<std::string>{"bench prefill Llama3.2-1B int8 cublaslt M=512,1024,2048",
                                      "bench prefill Llama3.2-1B int8 cublaslt M=1024,2048"}));
}

TEST_F(PipelineTest, StickyFaultEndsTheChildAndAFreshOneGoesOn) {
  ::setenv("FAKE_STICKY", "prefill/Llama3.2-1B/int8/cublaslt/1024", 1);
  const PipelineResult r = run(options());
  EXPECT_EQ(r.exit_code, kExitFailures);
  EXPECT_EQ(r.ok, 2);
  EXPECT_EQ(r.failed, 1);
  const json failed = read_json(prefill_dir() / "json" / "Llama3.2-1B_M1024.json");
  EXPECT_EQ(failed["error"]["type"], "CudaError");  // recorded by the child itself
  EXPECT_FALSE(failed.contains("recorded_by"));
  EXPECT_EQ(bench_calls().size(), 2u);
  EXPECT_EQ(bench_calls()[1], "bench prefill Llama3.2-1B int8 cublaslt M=2048");
}

TEST_F(PipelineTest, ChildDyingBeforeItsFirstCaseFailsTheGroupOnce) {
  ::setenv("FAKE_EXIT_EARLY", "prefill/Llama3.2-1B/int8/cublaslt", 1);
  const PipelineResult r = run(options());
  EXPECT_EQ(r.exit_code, kExitFailures);
  EXPECT_EQ(r.failed, 3);
  EXPECT_EQ(bench_calls().size(), 1u);  // not one child per M
  const json failed = read_json(prefill_dir() / "json" / "Llama3.2-1B_M2048.json");
  EXPECT_EQ(failed["error"]["type"], "Crash");
  const std::string message = failed["error"]["message"];
  EXPECT_NE(message.find("exit code 1 before its first case"), std::string::npos) << message;
  EXPECT_NE(message.find("cannot build Llama3.2-1B"), std::string::npos) << message;
  EXPECT_EQ(read_json(dir_.path() / "results" / "run.json")["tasks"][0]["status"], "failed");
}

// ---- resume ----------------------------------------------------------------------------------

TEST_F(PipelineTest, ResumesAfterThePipelineIsKilled) {
  ::setenv("FAKE_SLEEP", "0.4", 1);
  PipelineOptions o = options();
  o.prefill_m = {512, 1024, 2048, 4096, 8192, 16384};
  const fs::path json_dir = prefill_dir() / "json";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::ostringstream sink;
    try {
      run_pipeline(o, sink);
    } catch (...) {
    }
    ::_exit(0);
  }
  // Kill the pipeline (SIGKILL: no chance to clean up) once two cases are stored.
  auto stored = [&]() {
    int n = 0;
    std::error_code ec;
    for (int64_t m : o.prefill_m)
      if (fs::exists(json_dir / ("Llama3.2-1B_M" + std::to_string(m) + ".json"), ec)) ++n;
    return n;
  };
  const auto t0 = std::chrono::steady_clock::now();
  while (stored() < 2 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const int at_kill = stored();
  ASSERT_GE(at_kill, 2);
  ASSERT_LT(at_kill, 6);
  // Its benchmark child died with it (PR_SET_PDEATHSIG): nothing more appears.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(stored(), at_kill);
  const json interrupted = read_json(o.results_dir / "run.json");
  EXPECT_TRUE(interrupted["finished_at"].is_null());
  const std::string started = interrupted["started_at"];

  fs::remove(calls_);
  ::setenv("FAKE_SLEEP", "0", 1);
  const PipelineResult r = run(o);
  EXPECT_EQ(r.exit_code, kExitOk) << output_;
  EXPECT_EQ(r.ok, 6);
  const std::vector<std::string> calls = bench_calls();
  ASSERT_EQ(calls.size(), 1u);
  // Only the cases not stored before the kill ran again.
  const std::string ms = calls[0].substr(calls[0].find("M=") + 2);
  EXPECT_EQ(static_cast<int>(std::count(ms.begin(), ms.end(), ',')) + 1, 6 - at_kill) << ms;
  EXPECT_EQ(ms.find("512,"), std::string::npos);
  const json resumed = read_json(o.results_dir / "run.json");
  EXPECT_EQ(resumed["started_at"], started);  // the same run, resumed
  EXPECT_EQ(resumed["calls"], 2);
  EXPECT_TRUE(resumed["finished_at"].is_string());
  EXPECT_EQ(resumed["tasks"][0]["status"], "succeeded");
  EXPECT_EQ(resumed["builds"], json::array({build_info().id()}));  // one build, named once
}

// --rerun-other-builds measures again the ok cases another build measured, and only those: one
// call after a code change reruns them, the next finds everything done.
TEST_F(PipelineTest, RerunOtherBuildsRemeasuresOnlyTheCasesOfOtherBuilds) {
  ::setenv("FAKE_SLEEP", "0", 1);
  PipelineOptions o = options();
  o.prefill_m = {512, 1024};
  ::setenv("FAKE_BUILD", "0.0.9+src.000000000000", 1);
  EXPECT_EQ(run(o).exit_code, kExitOk) << output_;
  ::setenv("FAKE_BUILD", build_info().id().c_str(), 1);
  o.prefill_m = {512, 1024, 2048};
  o.rerun_other_builds = true;
  fs::remove(calls_);
  EXPECT_EQ(run(o).exit_code, kExitOk) << output_;
  ASSERT_EQ(bench_calls().size(), 1u);
  EXPECT_NE(bench_calls()[0].find("M=512,1024,2048"), std::string::npos) << bench_calls()[0];
  for (int64_t m : {512, 1024, 2048})
    EXPECT_EQ(read_json(prefill_dir() / "json" /
                        ("Llama3.2-1B_M" + std::to_string(m) + ".json"))["build"],
              build_info().id())
        << m;
  EXPECT_EQ(output_.find("kept as done were measured by another build"), std::string::npos);
  fs::remove(calls_);
  EXPECT_EQ(run(o).exit_code, kExitOk) << output_;
  EXPECT_TRUE(bench_calls().empty());  // all measured by this build now
  EXPECT_EQ(read_json(o.results_dir / "run.json")["options"]["rerun_other_builds"], true);
}

// A run resumed by another build says so, keeps the done cases, and run.json names both builds.
TEST_F(PipelineTest, ResumingWithAnotherBuildWarnsAndRecordsBothBuilds) {
  ::setenv("FAKE_SLEEP", "0", 1);
  PipelineOptions o = options();
  o.prefill_m = {512, 1024};
  o.tasks = {6};
  o.dtypes = {"int8"};
  o.backends = {"cublaslt"};
  EXPECT_EQ(run(o).exit_code, kExitOk) << output_;
  json record = read_json(o.results_dir / "run.json");
  record["finished_at"] = nullptr;  // as if the call had been stopped
  record["builds"] = {"0.0.9+src.000000000000"};
  std::ofstream(o.results_dir / "run.json") << record.dump(1);
  fs::remove(calls_);
  o.prefill_m = {512, 1024, 2048};
  EXPECT_EQ(run(o).exit_code, kExitOk) << output_;
  EXPECT_NE(output_.find("is not the one that measured the run's earlier cases "
                         "(0.0.9+src.000000000000)"),
            std::string::npos)
      << output_;
  // The fake benchmark writes no build: its two ok cases are kept and named as such.
  EXPECT_NE(output_.find("2 ok cases kept as done were measured by another build than this one"),
            std::string::npos)
      << output_;
  EXPECT_NE(output_.find("theirs: not recorded: 2"), std::string::npos) << output_;
  ASSERT_EQ(bench_calls().size(), 1u);  // the done cases are kept: only M = 2048 runs
  EXPECT_NE(bench_calls()[0].find("M=2048"), std::string::npos) << bench_calls()[0];
  EXPECT_EQ(read_json(o.results_dir / "run.json")["builds"],
            json::array({"0.0.9+src.000000000000", build_info().id()}));
}

TEST_F(PipelineTest, SigtermEndsTheChildAndLeavesTheRunResumable) {
  ::setenv("FAKE_SLEEP", "0.4", 1);
  PipelineOptions o = options();
  o.prefill_m = {512, 1024, 2048, 4096};
  const fs::path first = prefill_dir() / "json" / "Llama3.2-1B_M512.json";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::ostringstream sink;
    int code = 99;
    try {
      code = run_pipeline(o, sink).exit_code;
    } catch (...) {
    }
    ::_exit(code);
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(first) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  const json run_json = read_json(o.results_dir / "run.json");
  EXPECT_TRUE(run_json["finished_at"].is_null());
  bool noted = false;
  for (const json& note : run_json["notes"])
    if (note.get<std::string>().rfind("interrupted by signal 15", 0) == 0) noted = true;
  EXPECT_TRUE(noted);
  EXPECT_EQ(run_json["tasks"][0]["status"], "not_run");
  // The case running at the signal is not recorded as failed: it runs in the next call.
  for (int64_t m : o.prefill_m) {
    const StoredCase c =
        read_case(prefill_dir() / "json" / ("Llama3.2-1B_M" + std::to_string(m) + ".json"));
    if (c.exists) EXPECT_EQ(c.status, "ok") << m;
  }
  ::setenv("FAKE_SLEEP", "0", 1);
  EXPECT_EQ(run(o).exit_code, kExitOk);
}

// ---- reruns never erase an ok result ---------------------------------------------------------

TEST_F(PipelineTest, FailedRerunGoesBesideTheOkResultAndTheCsvKeepsIt) {
  PipelineOptions o = options();
  ASSERT_EQ(run(o).exit_code, kExitOk);
  const fs::path json_dir = prefill_dir() / "json";
  const std::string ok_before = read_text(json_dir / "Llama3.2-1B_M1024.json");

  // --force reruns ok cases; the rerun of 1024 fails (recorded by the child), of 2048 crashes.
  o.force = true;
  ::setenv("FAKE_FAIL", "prefill/Llama3.2-1B/int8/cublaslt/1024", 1);
  ::setenv("FAKE_CRASH", "prefill/Llama3.2-1B/int8/cublaslt/2048", 1);
  const PipelineResult r = run(o);
  EXPECT_EQ(r.failed, 0);  // the standing results are still ok
  EXPECT_EQ(r.ok, 3);
  EXPECT_EQ(read_text(json_dir / "Llama3.2-1B_M1024.json"), ok_before);
  const json rerun = read_json(json_dir / "Llama3.2-1B_M1024.rerun.json");
  EXPECT_EQ(rerun["status"], "failed");
  EXPECT_EQ(rerun["error"]["type"], "CudaError");
  const json crash = read_json(json_dir / "Llama3.2-1B_M2048.rerun.json");
  EXPECT_EQ(crash["error"]["type"], "Crash");
  EXPECT_EQ(read_json(json_dir / "Llama3.2-1B_M2048.json")["status"], "ok");
  EXPECT_FALSE(fs::exists(json_dir / "Llama3.2-1B_M512.rerun.json"));
  const std::vector<std::string> csv = read_lines(prefill_dir() / "Llama3.2-1B.csv");
  ASSERT_EQ(csv.size(), 4u);
  for (size_t i = 1; i < csv.size(); ++i) EXPECT_NE(csv[i].find(",ok,"), std::string::npos);
  // Nothing left in the staging folder for the report to trip on.
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(o.results_dir / ".staging", ec);
       !ec && it != fs::end(it); ++it)
    EXPECT_FALSE(it->is_regular_file()) << it->path();

  // A rerun that passes replaces the ok result and the old failure record goes.
  ::unsetenv("FAKE_FAIL");
  ::unsetenv("FAKE_CRASH");
  EXPECT_EQ(run(o).exit_code, kExitOk);
  EXPECT_FALSE(fs::exists(json_dir / "Llama3.2-1B_M1024.rerun.json"));

  // The CSV is rebuilt from the JSONs even when nothing runs.
  fs::remove(prefill_dir() / "Llama3.2-1B.csv");
  o.force = false;
  EXPECT_EQ(run(o).exit_code, kExitOk);
  EXPECT_EQ(read_lines(prefill_dir() / "Llama3.2-1B.csv").size(), 4u);
}

TEST(PipelineStore, OkIsNeverReplacedByAWorseOutcome) {
  test::TempDir dir("ss_store_");
  const json ok = {{"schema", "slidesparse.case/1"}, {"status", "ok"}, {"model", "m"}, {"M", 1}};
  json failed = ok;
  failed["status"] = "failed";
  json skipped = ok;
  skipped["status"] = "skipped";
  EXPECT_EQ(store_case(dir.path(), "m_M1.json", failed), dir.path() / "m_M1.json");
  EXPECT_EQ(store_case(dir.path(), "m_M1.json", ok), dir.path() / "m_M1.json");
  EXPECT_EQ(store_case(dir.path(), "m_M1.json", skipped), dir.path() / "m_M1.rerun.json");
  EXPECT_EQ(read_case(dir.path() / "m_M1.json").status, "ok");
  EXPECT_EQ(store_case(dir.path(), "m_M1.json", ok), dir.path() / "m_M1.json");
  EXPECT_FALSE(fs::exists(dir.path() / "m_M1.rerun.json"));
  const StoredCase garbage = [&] {
    std::ofstream(dir.path() / "bad.json") << "{not json";
    return read_case(dir.path() / "bad.json");
  }();
  EXPECT_TRUE(garbage.exists);
  EXPECT_FALSE(garbage.readable);
  EXPECT_FALSE(garbage.done_for(""));
}

// ---- FP8 below cc 8.9 ------------------------------------------------------------------------

TEST_F(PipelineTest, Fp8BelowCc89IsSkippedAndNotedOnce) {
  hw_ = fake_run_hardware("NVIDIA A100-SXM4-80GB", 80);
  ::setenv("FAKE_HW_KEY", hw_.hardware_key.c_str(), 1);
  ::setenv("FAKE_CC", "80", 1);
  PipelineOptions o = options();
  o.hardware = hw_;
  o.dtypes = {"int8", "fp8"};
  o.tasks = {3, 6};
  o.prefill_m = {512};
  const PipelineResult r = run(o);
  EXPECT_EQ(r.exit_code, kExitOk) << output_;
  EXPECT_EQ(r.ok, 1);
  EXPECT_EQ(r.skipped, 1);
  const fs::path fp8 = o.results_dir / "prefill" / "A100-SXM4-80GB_cc80_FP8_cuda13.0" / "cublaslt" /
                       "json" / "Llama3.2-1B_M512.json";
  const json skipped = read_json(fp8);
  EXPECT_EQ(skipped["status"], "skipped");
  EXPECT_NE(skipped["skip_reason"].get<std::string>().find("8.9"), std::string::npos);
  // The tuner is not asked for fp8 here.
  const std::vector<std::string> calls = read_lines(calls_);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls[0], "tune coarse int8");
  // Noted once in run.json, also after a second call.
  run(o);
  const json run_json = read_json(o.results_dir / "run.json");
  int notes = 0;
  for (const json& note : run_json["notes"])
    if (note.get<std::string>().find("fp8 needs compute capability >= 8.9") != std::string::npos)
      ++notes;
  EXPECT_EQ(notes, 1);
  EXPECT_EQ(run_json["tasks"][1]["skipped"], 1);
}

// ---- the time budget -------------------------------------------------------------------------

TEST_F(PipelineTest, StopsAtTheTimeBudgetAndResumes) {
  ::setenv("FAKE_SLEEP", "0.5", 1);
  PipelineOptions o = options();
  o.backends = {"cublaslt", "2:4", "2:8", "2:10"};
  o.prefill_m = {512, 1024};
  o.time_budget_s = 0.8;
  o.case_timeout_s = 3;
  const auto t0 = std::chrono::steady_clock::now();
  const PipelineResult first = run(o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 0.8 + 3 + 1.0);  // budget + one case timeout (+ slack for the records)
  EXPECT_EQ(first.exit_code, kExitResumable) << output_;
  EXPECT_TRUE(first.stopped_at_budget);
  EXPECT_FALSE(first.finished);
  EXPECT_GT(first.missing, 0);
  EXPECT_GT(first.ok, 0);
  const json run_json = read_json(o.results_dir / "run.json");
  EXPECT_TRUE(run_json["finished_at"].is_null());
  bool noted = false;
  for (const json& note : run_json["notes"])
    if (note.get<std::string>().find("stopped at the time budget") != std::string::npos)
      noted = true;
  EXPECT_TRUE(noted);
  EXPECT_EQ(run_json["tasks"][0]["status"], "not_run");
  const std::vector<std::string> first_calls = bench_calls();

  fs::remove(calls_);
  ::setenv("FAKE_SLEEP", "0", 1);
  o.time_budget_s.reset();
  const PipelineResult second = run(o);
  EXPECT_EQ(second.exit_code, kExitOk);
  EXPECT_EQ(second.ok, 8);
  EXPECT_EQ(static_cast<int64_t>(bench_calls().size()) + first.ok / 2, 4);
  const json done = read_json(o.results_dir / "run.json");
  EXPECT_TRUE(done["finished_at"].is_string());
  for (const json& note : done["notes"])
    EXPECT_EQ(note.get<std::string>().find("stopped at the time budget"), std::string::npos);
  (void)first_calls;
}

TEST_F(PipelineTest, RunJsonKeepsTheMatrixOfEveryCall) {
  // First call: int8 + fp8, stopped at the budget; second call resumes with int8 only.
  ::setenv("FAKE_SLEEP", "0.5", 1);
  PipelineOptions o = options();
  o.dtypes = {"int8", "fp8"};
  o.backends = {"cublaslt", "2:8"};
  o.prefill_m = {512};
  o.time_budget_s = 0.3;
  o.case_timeout_s = 3;
  EXPECT_EQ(run(o).exit_code, kExitResumable) << output_;
  ::setenv("FAKE_SLEEP", "0", 1);
  PipelineOptions subset = o;
  subset.dtypes = {"int8"};
  subset.time_budget_s.reset();
  run(subset);
  const json run_json = read_json(o.results_dir / "run.json");
  EXPECT_EQ(run_json["options"]["dtypes"], json({"int8"}));  // the last call's
  ASSERT_EQ(run_json["plans"].size(), 2u) << run_json.dump(1);
  EXPECT_EQ(run_json["plans"][0]["dtypes"], json({"int8", "fp8"}));
  EXPECT_EQ(run_json["plans"][0]["backends"], json({"cublaslt", "2:8"}));
  EXPECT_EQ(run_json["plans"][1]["dtypes"], json({"int8"}));
  EXPECT_FALSE(run_json["plans"][0].contains("case_timeout_s"));  // the matrix only
}

TEST(PipelineRunRecord, PlansAreKeptOnceAndSeededFromAnOlderRecord) {
  RunRecord r;
  r.options = {{"models", {"Qwen2.5-7B"}},
               {"dtypes", {"int8", "fp8"}},
               {"tasks", {6, 7}},
               {"case_timeout_s", 60}};  // a record written before `plans`
  r.add_plan({{"models", {"Qwen2.5-7B"}}, {"dtypes", {"int8"}}, {"tasks", {7}}});
  r.add_plan({{"models", {"Qwen2.5-7B"}}, {"dtypes", {"int8"}}, {"tasks", {7}}});
  ASSERT_EQ(r.plans.size(), 2u);
  EXPECT_EQ(r.plans[0]["dtypes"], json({"int8", "fp8"}));
  EXPECT_FALSE(r.plans[0].contains("case_timeout_s"));
  const RunRecord back = RunRecord::from_json(r.to_json());
  EXPECT_EQ(back.plans, r.plans);
}

// ---- tuning tasks ----------------------------------------------------------------------------

TEST_F(PipelineTest, TuningDoneInAnEarlierCallOfTheRunStaysSucceeded) {
  ::setenv("FAKE_SLEEP", "0.5", 1);
  PipelineOptions o = options();
  o.tasks = {3, 6};
  o.backends = {"cublaslt", "2:4", "2:8"};
  o.prefill_m = {512, 1024};
  o.time_budget_s = 0.8;
  o.case_timeout_s = 3;
  EXPECT_EQ(run(o).exit_code, kExitResumable) << output_;
  json first = read_json(o.results_dir / "run.json");
  ASSERT_EQ(first["tasks"][0]["id"], 3);
  EXPECT_EQ(first["tasks"][0]["status"], "succeeded");
  const json tuned = first["tasks"][0];

  // The next call of the same run: no tuner child, and the task keeps what the tuner did.
  fs::remove(calls_);
  ::setenv("FAKE_SLEEP", "0", 1);
  o.time_budget_s.reset();
  EXPECT_EQ(run(o).exit_code, kExitOk) << output_;
  const json done = read_json(o.results_dir / "run.json");
  EXPECT_EQ(done["calls"], 2);
  EXPECT_EQ(done["tasks"][0]["status"], "succeeded");
  EXPECT_EQ(done["tasks"][0]["ok"], tuned["ok"]);
  EXPECT_EQ(done["tasks"][0]["note"], tuned["note"]);
  for (const std::string& call : read_lines(calls_))
    EXPECT_EQ(call.rfind("tune", 0), std::string::npos);
  EXPECT_NE(output_.find("task 3 coarse tuning: done in an earlier call of this run"),
            std::string::npos)
      << output_;
}

TEST_F(PipelineTest, TuningTasksRecordTheirTablesAndSkipWhenDone) {
  PipelineOptions o = options();
  o.tasks = {3, 4};
  o.backends = {"cublaslt", "2:8"};
  const PipelineResult r = run(o);
  EXPECT_EQ(r.exit_code, kExitOk) << output_;
  json run_json = read_json(o.results_dir / "run.json");
  ASSERT_EQ(run_json["tasks"].size(), 2u);
  EXPECT_EQ(run_json["tasks"][0]["status"], "succeeded");
  EXPECT_EQ(run_json["tasks"][0]["ok"], 6);
  const auto outputs = run_json["tasks"][1]["outputs"].get<std::vector<std::string>>();
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_NE(outputs[0].find(hw_.hardware_key + "/gemm_cusparselt.json"), std::string::npos);
  EXPECT_TRUE(fs::exists(o.tuning_dir / hw_.hardware_key / "gemm_cusparselt.json"));
  EXPECT_EQ(read_lines(calls_), (std::vector<std::string>{"tune coarse int8", "tune fine int8"}));

  // Done for these models and precisions, tables present: no tuner child, "all outputs exist".
  fs::remove(calls_);
  EXPECT_EQ(run(o).exit_code, kExitOk);
  EXPECT_TRUE(read_lines(calls_).empty());
  run_json = read_json(o.results_dir / "run.json");
  EXPECT_EQ(run_json["tasks"][0]["status"], "skipped");
  EXPECT_EQ(run_json["tasks"][0]["note"], "all outputs exist");

  // Another precision: the tuner runs again (it skips what its table holds).
  o.dtypes = {"int8", "bf16"};
  EXPECT_EQ(run(o).exit_code, kExitOk);
  EXPECT_EQ(read_lines(calls_).size(), 2u);
}

// ---- dry run and the CLI ---------------------------------------------------------------------

TEST_F(PipelineTest, DryRunPrintsThePlanAndWritesNothing) {
  PipelineOptions o = options();
  o.dry_run = true;
  o.tasks = {4, 6};
  o.backends = {"cublaslt", "2:8"};
  EXPECT_EQ(run(o).exit_code, kExitOk);
  EXPECT_FALSE(fs::exists(o.results_dir));
  EXPECT_TRUE(read_lines(calls_).empty());
  EXPECT_NE(output_.find("tune --stage fine"), std::string::npos) << output_;
  // The tuner tunes the epilogue the benchmarks run (it decides the GEMM output type in the key).
  EXPECT_NE(output_.find("--dtype int8 --epilogue fused"), std::string::npos) << output_;
  EXPECT_NE(output_.find("bench prefill --model Llama3.2-1B --dtype int8 --backend cusparselt "
                         "--sparsity 2:8 --M 512,1024,2048"),
            std::string::npos)
      << output_;
  EXPECT_NE(output_.find("task 6 prefill: 2 groups, 6 cases (0 done"), std::string::npos);
}

TEST_F(PipelineTest, CliWithoutGpuRecordsNotRunAndWithAFakeGpuWritesTheReport) {
  const fs::path results = dir_.path() / "cli_results";
  const std::string common =
      "prepare-bench --models Llama3.2-1B --dtype int8 --backends "
      "cublaslt,2:8 --tasks 6 --prefill-M 512,1024 --results '" +
      results.string() + "' --runner '" + runner_.string() + "'";
  const test::CliResult dry = test::run_cli(common + " --dry-run");
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("dry run"), std::string::npos);
  EXPECT_FALSE(fs::exists(results));

  const bool have_gpu = test::run_cli("info --gpu-present").exit_code == 0;
  if (!have_gpu) {
    const test::CliResult none = test::run_cli(common);
    EXPECT_EQ(none.exit_code, kExitNoGpu) << none.output;  // as `slidesparse tune`
    const json run_json = read_json(results / "run.json");
    EXPECT_EQ(run_json["tasks"][0]["status"], "not_run");
    EXPECT_NE(run_json["tasks"][0]["note"].get<std::string>().find("no GPU"), std::string::npos);
    EXPECT_TRUE(fs::exists(results / "report.md"));
    fs::remove_all(results);
  }
  const std::string cmd = "SLIDESPARSE_FAKE_GPU='NVIDIA H200,9.0' '" + std::string(SS_CLI_PATH) +
                          "' " + common + " > /dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(fs::exists(results / "report.md"));
  EXPECT_TRUE(fs::exists(results / "report.html"));
  const json run_json = read_json(results / "run.json");
  EXPECT_EQ(run_json["tasks"][0]["ok"], 4);
  EXPECT_TRUE(run_json["finished_at"].is_string());
}

}  // namespace
}  // namespace slidesparse::pipeline
