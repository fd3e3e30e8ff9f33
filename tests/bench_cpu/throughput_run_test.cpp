// run_throughput_bench against a stub model, a fake energy meter and a fake CUDA context check:
// the calls each case makes, one JSON per case in the schema the report reads (checked against
// the report's own fixture), the case marker, and what an error of each kind does to the case and
// to the invocation (skipped / failed and go on / exit 3 at once).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "bench/energy_meter.h"
#include "bench/throughput_bench.h"
#include "common/temp_dir.h"
#include "slidesparse/build_info.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kVocab = 1000;

// What the stub saw, shared by every model one loader made.
struct StubLog {
  std::vector<EngineSpec> loads;
  std::vector<std::vector<int64_t>> starts;         // max_tokens of each start_batch
  std::vector<std::pair<size_t, size_t>> prefills;  // (sequences, prompt length)
  int64_t decodes = 0;
  int64_t ends = 0;
  bool open = false;
  bool prompts_in_vocab = true;
  std::vector<std::string> markers_seen;  // the marker's text at each timed prefill
};

// The phase of a step: called before each prefill / decode with the batch's sequence count and
// prompt length (0 for decode); may throw to act out a failure.
using StepHook = std::function<void(const char* step, size_t sequences, size_t prompt_len)>;

class StubModel : public ThroughputModel {
 public:
  StubModel(StubLog& log, StepHook hook, size_t wrong_token_count = 0)
      : log_(log), hook_(std::move(hook)), wrong_token_count_(wrong_token_count) {}
  std::string describe() const override { return "stub model"; }
  int64_t vocab_size() const override { return kVocab; }
  void start_batch(std::span<const int64_t> max_tokens) override {
    if (log_.open) throw Error("stub: start_batch while a batch is open");
    log_.starts.emplace_back(max_tokens.begin(), max_tokens.end());
    log_.open = true;
    batch_ = max_tokens.size();
  }
  StepOutcome prefill(std::span<const std::vector<int32_t>> prompts) override {
    if (!log_.open) throw Error("stub: prefill without a batch");
    log_.prefills.emplace_back(prompts.size(), prompts.empty() ? 0 : prompts[0].size());
    for (const auto& p : prompts)
      for (int32_t t : p)
        if (t < 0 || t >= kVocab) log_.prompts_in_vocab = false;
    if (hook_) hook_("prefill", prompts.size(), prompts.empty() ? 0 : prompts[0].size());
    return {std::vector<int32_t>(wrong_token_count_ ? wrong_token_count_ : batch_, 7), 2.0};
  }
  StepOutcome decode() override {
    if (!log_.open) throw Error("stub: decode without a batch");
    ++log_.decodes;
    if (hook_) hook_("decode", batch_, 0);
    return {std::vector<int32_t>(batch_, 3), 0.5};
  }
  void end_batch() override {
    if (!log_.open) throw Error("stub: end_batch without a batch");
    log_.open = false;
    ++log_.ends;
  }

 private:
  StubLog& log_;
  StepHook hook_;
  size_t wrong_token_count_;
  size_t batch_ = 0;
};

class FakeMeter : public EnergyMeter {
 public:
  void start() override { ++starts; }
  EnergyReading stop(double window_s) override {
    ++stops;
    EnergyReading r;
    r.energy_j = joules;
    r.avg_power_w = joules / std::max(window_s, 1e-9);
    r.power_samples = 4;
    r.source = "nvml_energy_counter";
    return r;
  }
  double joules = 12.0;
  int starts = 0;
  int stops = 0;
};

HostRecord test_host() {
  HostRecord h;
  h.gpu_name = "NVIDIA H200";
  h.gpu_short_name = "H200";
  h.cc = 90;
  h.driver = "580.159.04";
  h.hardware_key = "NVIDIA_H200_cc90_cuda13.0_cublaslt130100_cusparselt800";
  h.toolchain = "cuda13.0";
  return h;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

class ThroughputRun : public ::testing::Test {
 protected:
  void SetUp() override {
    json_dir_ = tmp_.path() / "json";
    marker_ = tmp_.path() / "case.marker";
    env_.host = test_host();
    env_.energy = &meter_;
    env_.context_fault = [this]() -> std::optional<std::string> {
      if (context_dead_) return std::string("cudaErrorIllegalAddress: an illegal memory access");
      return std::nullopt;
    };
    env_.load_model = [this](const EngineSpec& spec) -> std::unique_ptr<ThroughputModel> {
      log_.loads.push_back(spec);
      if (load_hook_) load_hook_(spec);
      return std::make_unique<StubModel>(log_, step_hook_, wrong_token_count_);
    };
  }

  ThroughputOptions options(ThroughputPhase phase, std::vector<int64_t> ms,
                            const std::string& backend = "cusparselt",
                            const std::string& sparsity = "2:8") {
    ThroughputArgs a;
    a.model = "Llama3.2-1B";
    a.dtype = "int8";
    a.backend = backend;
    a.sparsity = sparsity;
    a.ms = std::move(ms);
    a.json_dir = json_dir_.string();
    a.case_marker = marker_.string();
    a.min_time_s = 0;  // exactly --repeats: the stub is fast
    return validate_throughput_args(phase, a);
  }

  ThroughputRunResult run(const ThroughputOptions& o) {
    std::ostringstream out;
    const ThroughputRunResult r = run_throughput_bench(o, env_, out);
    output_ = out.str();
    return r;
  }

  json case_file(const std::string& name) { return read_json(json_dir_ / name); }

  test::TempDir tmp_{"ss_bench_run_"};
  fs::path json_dir_;
  fs::path marker_;
  StubLog log_;
  FakeMeter meter_;
  ThroughputEnvironment env_;
  StepHook step_hook_;
  std::function<void(const EngineSpec&)> load_hook_;
  size_t wrong_token_count_ = 0;
  bool context_dead_ = false;
  std::string output_;
};

TEST_F(ThroughputRun, PrefillRunsOneStepPerRepetitionOnOneEngine) {
  const ThroughputOptions o = options(ThroughputPhase::kPrefill, {512, 4096});
  const ThroughputRunResult r = run(o);
  EXPECT_EQ(r.exit_code, 0) << output_;
  EXPECT_EQ(r.ok, 2);
  ASSERT_EQ(log_.loads.size(), 1u);  // one engine for every M
  const EngineSpec& spec = log_.loads[0];
  EXPECT_EQ(spec.model, "Llama3.2-1B");
  EXPECT_EQ(spec.backend.name, "cusparselt");
  EXPECT_EQ(spec.sparsity->name(), "2:8");
  EXPECT_EQ(spec.dtype, DType::kI8);
  EXPECT_EQ(spec.max_batch, 4);
  EXPECT_EQ(spec.max_tokens_per_step, 4096);
  EXPECT_EQ(spec.kv_cache_tokens, 4096);
  // (2 warm-up + 5 timed) repetitions per M, each start_batch / prefill / end_batch.
  ASSERT_EQ(log_.prefills.size(), 14u);
  EXPECT_EQ(log_.prefills[0], (std::pair<size_t, size_t>{1, 512}));
  EXPECT_EQ(log_.prefills[13], (std::pair<size_t, size_t>{4, 1024}));
  EXPECT_EQ(log_.starts[13], std::vector<int64_t>(4, 1024));
  EXPECT_EQ(log_.decodes, 0);
  EXPECT_EQ(log_.ends, 14);
  EXPECT_TRUE(log_.prompts_in_vocab);
  EXPECT_EQ(meter_.starts, 2);  // one energy window per case
  EXPECT_EQ(meter_.stops, 2);

  const json j = case_file("Llama3.2-1B_M4096.json");
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["M"], 4096);
  EXPECT_EQ(j["metrics"]["batch"], 4);
  EXPECT_EQ(j["metrics"]["prompt_len"], 1024);
  EXPECT_EQ(j["metrics"]["output_len"], 1);
  EXPECT_EQ(j["metrics"]["warmup"], 2);
  EXPECT_EQ(j["metrics"]["repeats"], 5);
  EXPECT_DOUBLE_EQ(j["metrics"]["step_ms_median"].get<double>(), 2.0);
  const double elapsed = j["metrics"]["elapsed_s"].get<double>();
  EXPECT_GT(elapsed, 0);
  EXPECT_NEAR(j["metrics"]["tokens_per_s"].get<double>(), 4100 / elapsed, 1e-6 * 4100 / elapsed);
  EXPECT_DOUBLE_EQ(j["metrics"]["energy_j"].get<double>(), 12.0 / 5);
  EXPECT_DOUBLE_EQ(j["metrics"]["joules_per_token"].get<double>(), 12.0 / 5 / 4100);
  EXPECT_EQ(j["metrics"]["energy_source"], "nvml_energy_counter");
  EXPECT_EQ(j["command"],
            "slidesparse bench prefill --model Llama3.2-1B --dtype int8 --backend cusparselt "
            "--sparsity 2:8 --M 4096 --min-time 0 --json-dir " +
                json_dir_.string());
  EXPECT_EQ(j["engine"]["description"], "stub model");
  EXPECT_NE(output_.find("M=  4096"), std::string::npos) << output_;
  EXPECT_NE(output_.find("J/token"), std::string::npos) << output_;
  EXPECT_NE(output_.find("2 warm-up, then at least 5 timed"), std::string::npos) << output_;
  // Written through a temporary + rename: nothing else is left in the folder.
  EXPECT_EQ(files_in(json_dir_),
            (std::set<std::string>{"Llama3.2-1B_M512.json", "Llama3.2-1B_M4096.json"}));
  EXPECT_FALSE(fs::exists(marker_));  // removed at a normal end
}

TEST_F(ThroughputRun, DecodeIsOnePrefillThen255DecodeSteps) {
  const ThroughputOptions o = options(ThroughputPhase::kDecode, {64, 8}, "cublaslt-fa", "");
  const ThroughputRunResult r = run(o);
  EXPECT_EQ(r.exit_code, 0) << output_;
  ASSERT_EQ(log_.loads.size(), 1u);
  EXPECT_TRUE(log_.loads[0].backend.fast_accum);
  EXPECT_FALSE(log_.loads[0].sparsity);
  EXPECT_EQ(log_.loads[0].max_batch, 64);
  EXPECT_EQ(log_.loads[0].max_tokens_per_step, 64 * 16);
  EXPECT_EQ(log_.loads[0].kv_cache_tokens, 64 * 272);
  // Per M: 1 warm-up (prefill + 16 decode steps) and 3 timed (prefill + 255 decode steps).
  EXPECT_EQ(log_.prefills.size(), 8u);
  EXPECT_EQ(log_.decodes, 2 * (16 + 3 * 255));
  EXPECT_EQ(log_.starts[0], std::vector<int64_t>(64, 272));
  EXPECT_EQ(log_.prefills[0], (std::pair<size_t, size_t>{64, 16}));
  const json j = case_file("Llama3.2-1B_M64.json");
  EXPECT_EQ(j["metrics"]["batch"], 64);
  EXPECT_EQ(j["metrics"]["output_len"], 256);
  EXPECT_EQ(j["metrics"]["repeats"], 3);
  EXPECT_EQ(j["metrics"]["warmup"], 1);
  EXPECT_DOUBLE_EQ(j["metrics"]["step_ms_median"].get<double>(), 0.5);  // the decode steps
  EXPECT_DOUBLE_EQ(j["metrics"]["joules_per_token"].get<double>(), 12.0 / 3 / (64 * 272));
  EXPECT_EQ(j["sparsity"], nullptr);
  EXPECT_EQ(j["backend"], "cublaslt-fa");
  EXPECT_EQ(j["stage"], "decode");
  EXPECT_EQ(j["phase"], "decode");
  EXPECT_EQ(j["task"], 7);
}

// The fields the report reads (src/report/results_model.cpp) exist with the fixture's JSON types.
void expect_same_shape(const json& ours, const json& fixture, const std::string& where) {
  for (auto it = fixture.begin(); it != fixture.end(); ++it) {
    ASSERT_TRUE(ours.contains(it.key())) << where << it.key() << " missing";
    const json& mine = ours[it.key()];
    if (it->is_null() || mine.is_null()) continue;  // nullable fields (error, metrics, driver)
    if (it->is_object()) {
      ASSERT_TRUE(mine.is_object()) << where << it.key();
      expect_same_shape(mine, *it, where + it.key() + ".");
    } else if (it->is_number()) {
      EXPECT_TRUE(mine.is_number()) << where << it.key();
      if (it->is_number_integer()) EXPECT_TRUE(mine.is_number_integer()) << where << it.key();
    } else {
      EXPECT_EQ(mine.type(), it->type()) << where << it.key();
    }
  }
}

TEST_F(ThroughputRun, JsonHasTheReportsSchema) {
  run(options(ThroughputPhase::kPrefill, {1024}, "cusparselt", "2:4"));
  const json ok = case_file("Llama3.2-1B_M1024.json");
  const fs::path fixtures = SS_REPORT_FIXTURE_DIR;
  const json fixture_ok = read_json(
      fixtures / "prefill/A100_cc80_INT8_cuda13.0/cusparselt/2_4/json/Llama3.2-1B_M1024.json");
  expect_same_shape(ok, fixture_ok, "");
  // Exactly these keys: the report's, plus phase, the engine that ran it and the build.
  std::set<std::string> keys;
  for (auto it = ok.begin(); it != ok.end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys,
            (std::set<std::string>{"M",      "backend",    "build",  "command",      "dtype",
                                   "engine", "error",      "gpu",    "hardware_key", "metrics",
                                   "model",  "phase",      "schema", "skip_reason",  "sparsity",
                                   "stage",  "started_at", "status", "task",         "wall_s"}));
  EXPECT_EQ(ok["build"], build_info().id());
  EXPECT_EQ(ok["schema"], "slidesparse.case/1");
  EXPECT_EQ(ok["sparsity"], "2:4");
  EXPECT_EQ(ok["gpu"], (json{{"cc", "9.0"}, {"driver", "580.159.04"}, {"name", "NVIDIA H200"}}));
  EXPECT_EQ(ok["hardware_key"], "NVIDIA_H200_cc90_cuda13.0_cublaslt130100_cusparselt800");
  EXPECT_TRUE(std::regex_match(ok["started_at"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << ok["started_at"];
  EXPECT_EQ(ok["error"], nullptr);
  EXPECT_EQ(ok["skip_reason"], nullptr);
  for (const char* key : {"avg_power_w", "energy_j", "joules_per_token"})
    EXPECT_TRUE(ok["metrics"][key].is_number()) << key;

  // A failed and a skipped case against the fixture's failed and skipped ones.
  step_hook_ = [](const char*, size_t, size_t) { throw OutOfMemoryError("cudaMalloc of 2.0 GiB"); };
  run(options(ThroughputPhase::kPrefill, {2048}, "cusparselt", "2:8"));
  const json failed = case_file("Llama3.2-1B_M2048.json");
  expect_same_shape(failed,
                    read_json(fixtures / "prefill/A100_cc80_INT8_cuda13.0/cusparselt/2_8/"
                                         "json/Qwen2.5-7B_M2048.json"),
                    "failed.");
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["metrics"], nullptr);
  EXPECT_EQ(failed["error"],
            (json{{"type", "OutOfMemoryError"}, {"message", "cudaMalloc of 2.0 GiB"}}));

  load_hook_ = [](const EngineSpec&) { throw NotSupportedError("fp8 needs cc >= 8.9"); };
  run(options(ThroughputPhase::kPrefill, {512}, "cublaslt-fa", ""));
  const json skipped = case_file("Llama3.2-1B_M512.json");
  expect_same_shape(skipped,
                    read_json(fixtures / "prefill/A100_cc80_FP8_cuda13.0/cublaslt-fa/json/"
                                         "Llama3.2-1B_M1024.json"),
                    "skipped.");
  EXPECT_EQ(skipped["status"], "skipped");
  EXPECT_EQ(skipped["skip_reason"], "fp8 needs cc >= 8.9");
  EXPECT_EQ(skipped["error"], nullptr);
  EXPECT_EQ(skipped["metrics"], nullptr);
}

TEST_F(ThroughputRun, SimpleStageNamesFilesByPhase) {
  ThroughputArgs a;
  a.model = "Llama3.2-1B";
  a.dtype = "bf16";
  a.backend = "cublaslt";
  a.ms = {16};
  a.stage = "simple";
  a.json_dir = json_dir_.string();
  a.min_time_s = 0;
  run(validate_throughput_args(ThroughputPhase::kDecode, a));
  const json j = case_file("Llama3.2-1B_decode_M16.json");
  EXPECT_EQ(j["stage"], "simple");
  EXPECT_EQ(j["phase"], "decode");
  EXPECT_EQ(j["task"], 5);
  EXPECT_EQ(j["dtype"], "bf16");
}

TEST_F(ThroughputRun, MarkerNamesTheRunningCaseAndGoesAtTheEnd) {
  step_hook_ = [this](const char*, size_t, size_t) {
    log_.markers_seen.push_back(read_text(marker_));
  };
  run(options(ThroughputPhase::kPrefill, {512, 2048}));
  ASSERT_EQ(log_.markers_seen.size(), 14u);
  EXPECT_EQ(log_.markers_seen.front(), "Llama3.2-1B_M512.json\n");
  EXPECT_EQ(log_.markers_seen.back(), "Llama3.2-1B_M2048.json\n");
  EXPECT_FALSE(fs::exists(marker_));
  EXPECT_EQ(files_in(tmp_.path()), (std::set<std::string>{"json"}));  // no marker temporaries
}

TEST_F(ThroughputRun, OutOfMemoryFailsThatCaseAndTheNextRuns) {
  step_hook_ = [](const char* step, size_t sequences, size_t) {
    if (std::string(step) == "prefill" && sequences == 4) throw OutOfMemoryError("arena of 9 GiB");
  };
  const ThroughputRunResult r = run(options(ThroughputPhase::kPrefill, {512, 4096, 1024}));
  EXPECT_EQ(r.exit_code, kExitSomeFailed);
  EXPECT_EQ(r.ok, 2);
  EXPECT_EQ(r.failed, 1);
  EXPECT_FALSE(log_.open);
  EXPECT_EQ(log_.ends, static_cast<int64_t>(log_.starts.size()));  // the failed batch was ended
  const json j = case_file("Llama3.2-1B_M4096.json");
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"]["type"], "OutOfMemoryError");
  EXPECT_EQ(j["error"]["message"], "arena of 9 GiB");
  EXPECT_EQ(case_file("Llama3.2-1B_M1024.json")["status"], "ok");
  EXPECT_NE(output_.find("FAILED OutOfMemoryError"), std::string::npos) << output_;
  EXPECT_FALSE(fs::exists(marker_));
}

TEST_F(ThroughputRun, NonStickyCudaErrorAndBadStepsFailAndGoOn) {
  step_hook_ = [](const char* step, size_t, size_t) {
    if (std::string(step) == "decode") throw CudaError("cublasLtMatmul failed: not supported");
  };
  wrong_token_count_ = 0;
  ThroughputRunResult r = run(options(ThroughputPhase::kDecode, {8, 16}, "cublaslt", ""));
  EXPECT_EQ(r.exit_code, kExitSomeFailed);
  EXPECT_EQ(r.failed, 2);
  EXPECT_FALSE(r.context_lost);
  EXPECT_EQ(case_file("Llama3.2-1B_M16.json")["error"]["type"], "CudaError");
  EXPECT_FALSE(log_.open);

  // An engine that samples the wrong number of tokens is a failed case, not numbers.
  step_hook_ = nullptr;
  wrong_token_count_ = 3;
  r = run(options(ThroughputPhase::kPrefill, {512}, "cublaslt", ""));
  EXPECT_EQ(r.exit_code, kExitSomeFailed);
  const json j = case_file("Llama3.2-1B_M512.json");
  EXPECT_EQ(j["error"]["type"], "Error");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("3 tokens for a batch of 1"),
            std::string::npos)
      << j["error"];
}

TEST_F(ThroughputRun, NotSupportedInACaseSkipsIt) {
  step_hook_ = [](const char*, size_t sequences, size_t) {
    if (sequences == 2) throw NotSupportedError("no kernel for this shape");
  };
  const ThroughputRunResult r = run(options(ThroughputPhase::kPrefill, {2048, 512}));
  EXPECT_EQ(r.exit_code, kExitAllOkOrSkipped);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.ok, 1);
  EXPECT_EQ(case_file("Llama3.2-1B_M2048.json")["skip_reason"], "no kernel for this shape");
}

TEST_F(ThroughputRun, StickyFaultRecordsTheCaseThenStopsWithExit3) {
  step_hook_ = [this](const char*, size_t sequences, size_t) {
    if (sequences == 2) {
      context_dead_ = true;
      throw CudaError("an illegal memory access was encountered in fused_quant_slide");
    }
  };
  const ThroughputRunResult r = run(options(ThroughputPhase::kPrefill, {512, 2048, 4096}));
  EXPECT_EQ(r.exit_code, kExitContextLost);
  EXPECT_TRUE(r.context_lost);
  EXPECT_EQ(files_in(json_dir_),
            (std::set<std::string>{"Llama3.2-1B_M512.json", "Llama3.2-1B_M2048.json"}));
  const json j = case_file("Llama3.2-1B_M2048.json");
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["error"]["type"], "CudaError");
  EXPECT_NE(output_.find("exit 3"), std::string::npos) << output_;
  EXPECT_FALSE(
      fs::exists(marker_));  // the crashed case is recorded: nothing for the parent to guess
}

TEST_F(ThroughputRun, NotSupportedAtLoadSkipsEveryM) {
  load_hook_ = [](const EngineSpec&) {
    throw NotSupportedError("fp8 (E4M3) GEMMs need compute capability >= 8.9");
  };
  const ThroughputRunResult r = run(options(ThroughputPhase::kDecode, {64, 128, 256}));
  EXPECT_EQ(r.exit_code, kExitAllOkOrSkipped);
  EXPECT_EQ(r.skipped, 3);
  for (const char* name :
       {"Llama3.2-1B_M64.json", "Llama3.2-1B_M128.json", "Llama3.2-1B_M256.json"}) {
    const json j = case_file(name);
    EXPECT_EQ(j["status"], "skipped") << name;
    EXPECT_EQ(j["skip_reason"], "fp8 (E4M3) GEMMs need compute capability >= 8.9");
    EXPECT_EQ(j["engine"], nullptr);
  }
}

TEST_F(ThroughputRun, OtherLoadErrorsFailEveryM) {
  load_hook_ = [](const EngineSpec&) { throw FormatError("config.json: no hidden_size"); };
  const ThroughputRunResult r = run(options(ThroughputPhase::kPrefill, {512, 1024}));
  EXPECT_EQ(r.exit_code, kExitSomeFailed);
  EXPECT_EQ(r.failed, 2);
  EXPECT_EQ(case_file("Llama3.2-1B_M1024.json")["error"]["message"],
            "loading the engine: config.json: no hidden_size");
}

TEST_F(ThroughputRun, LoadOutOfMemoryFailsTheLargestMAndReloadsForTheRest) {
  load_hook_ = [](const EngineSpec& spec) {
    if (spec.max_tokens_per_step > 4096) throw OutOfMemoryError("cudaMalloc of 80 GiB");
  };
  const ThroughputRunResult r = run(options(ThroughputPhase::kPrefill, {512, 65536, 4096}));
  EXPECT_EQ(r.exit_code, kExitSomeFailed);
  EXPECT_EQ(r.ok, 2);
  ASSERT_EQ(log_.loads.size(), 2u);
  EXPECT_EQ(log_.loads[1].max_tokens_per_step, 4096);
  const json j = case_file("Llama3.2-1B_M65536.json");
  EXPECT_EQ(j["error"]["type"], "OutOfMemoryError");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("sized for M = 65536"), std::string::npos)
      << j["error"];
  EXPECT_EQ(case_file("Llama3.2-1B_M4096.json")["status"], "ok");
}

TEST_F(ThroughputRun, StickyFaultAtLoadRecordsTheFirstCase) {
  load_hook_ = [this](const EngineSpec&) {
    context_dead_ = true;
    throw CudaError("cudaErrorLaunchFailure in weight fill");
  };
  const ThroughputRunResult r = run(options(ThroughputPhase::kPrefill, {1024, 512}));
  EXPECT_EQ(r.exit_code, kExitContextLost);
  EXPECT_EQ(files_in(json_dir_), (std::set<std::string>{"Llama3.2-1B_M1024.json"}));
}

TEST_F(ThroughputRun, NoEnergyMeterGivesNullsAndANote) {
  env_.energy = nullptr;
  env_.energy_absent_note = "NVML not available: cannot load libnvidia-ml.so.1";
  run(options(ThroughputPhase::kPrefill, {512}));
  const json m = case_file("Llama3.2-1B_M512.json")["metrics"];
  EXPECT_EQ(m["energy_j"], nullptr);
  EXPECT_EQ(m["joules_per_token"], nullptr);
  EXPECT_EQ(m["avg_power_w"], nullptr);
  EXPECT_EQ(m["energy_note"], "NVML not available: cannot load libnvidia-ml.so.1");
  EXPECT_NE(output_.find("J/token -"), std::string::npos) << output_;
}

TEST_F(ThroughputRun, TimedRepetitionsGoOnUntilTheMinimumWindow) {
  step_hook_ = [](const char*, size_t, size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  ThroughputOptions o = options(ThroughputPhase::kPrefill, {512});
  o.warmup = 0;
  o.repeats = 2;
  o.min_timed_s = 0.1;
  run(o);
  const json m = case_file("Llama3.2-1B_M512.json")["metrics"];
  EXPECT_GE(m["repeats"].get<int>(), 10);  // ~20 of 5 ms
  EXPECT_GE(m["timed_s"].get<double>(), 0.1);
  EXPECT_EQ(static_cast<int64_t>(log_.prefills.size()), m["repeats"].get<int64_t>());
}

TEST_F(ThroughputRun, RerunReplacesTheCaseFile) {
  run(options(ThroughputPhase::kPrefill, {512}));
  meter_.joules = 99.0;
  run(options(ThroughputPhase::kPrefill, {512}));
  EXPECT_DOUBLE_EQ(case_file("Llama3.2-1B_M512.json")["metrics"]["energy_j"].get<double>(),
                   99.0 / 5);
  EXPECT_EQ(files_in(json_dir_), (std::set<std::string>{"Llama3.2-1B_M512.json"}));
}

TEST(NvmlEnergyMeter, MissingLibraryIsUnavailableWithAReason) {
  NvmlEnergyMeter meter("libslidesparse-no-such-nvml.so.1");
  EXPECT_FALSE(meter.available());
  EXPECT_NE(meter.note().find("cannot load libslidesparse-no-such-nvml.so.1"), std::string::npos)
      << meter.note();
  EXPECT_FALSE(meter.driver_version());
  meter.start();
  const EnergyReading r = meter.stop(1.0);
  EXPECT_FALSE(r.energy_j);
  EXPECT_FALSE(r.avg_power_w);
  EXPECT_EQ(r.note, meter.note());
}

}  // namespace
}  // namespace slidesparse
