// The benchmark definitions as batches (the reference system's, shared DESIGN.md §3), the engine
// sizes one invocation needs, argument checks, names, rerun commands and metrics arithmetic.
#include "bench/throughput_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bench/throughput_bench.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(ThroughputPlan, PrefillSplitsStepsIntoSequencesOfAtMost1024) {
  const CasePlan small = plan_case(ThroughputPhase::kPrefill, 512);
  EXPECT_EQ(small.sequences, 1);
  EXPECT_EQ(small.prompt_len, 512);
  EXPECT_EQ(small.output_len, 1);
  EXPECT_EQ(small.total_tokens(), 513);
  EXPECT_EQ(small.decode_steps(), 0);
  EXPECT_EQ(small.kv_tokens_per_sequence(), 512);

  const CasePlan big = plan_case(ThroughputPhase::kPrefill, 4096);
  EXPECT_EQ(big.sequences, 4);
  EXPECT_EQ(big.prompt_len, 1024);
  EXPECT_EQ(big.prompt_tokens(), 4096);
  EXPECT_EQ(big.output_tokens(), 4);
  EXPECT_EQ(big.total_tokens(), 4100);

  // Not a multiple of 1024: ceil(M/1024) full sequences, as the reference defines it.
  const CasePlan odd = plan_case(ThroughputPhase::kPrefill, 1500);
  EXPECT_EQ(odd.sequences, 2);
  EXPECT_EQ(odd.prompt_len, 1024);
  EXPECT_EQ(plan_case(ThroughputPhase::kPrefill, 65536).sequences, 64);
  EXPECT_EQ(plan_case(ThroughputPhase::kPrefill, 1).prompt_len, 1);
}

TEST(ThroughputPlan, DecodeIsPrompt16Output256) {
  const CasePlan d = plan_case(ThroughputPhase::kDecode, 64);
  EXPECT_EQ(d.sequences, 64);
  EXPECT_EQ(d.prompt_len, 16);
  EXPECT_EQ(d.output_len, 256);
  EXPECT_EQ(d.decode_steps(), 255);  // the first output token comes from the prefill
  EXPECT_EQ(d.kv_tokens_per_sequence(), 272);
  EXPECT_EQ(d.total_tokens(), 64 * 272);
  EXPECT_EQ(d.output_tokens(), 64 * 256);
}

TEST(ThroughputPlan, RefusesMBelowOne) {
  EXPECT_THROW(plan_case(ThroughputPhase::kPrefill, 0), Error);
  EXPECT_THROW(plan_case(ThroughputPhase::kDecode, -3), Error);
}

TEST(ThroughputPlan, OneEngineCoversEveryCase) {
  const std::vector<int64_t> prefill_ms{512, 4096, 65536, 1000};
  const EngineSizes p = plan_engine_sizes(ThroughputPhase::kPrefill, prefill_ms, 16);
  EXPECT_EQ(p.max_batch, 64);
  EXPECT_EQ(p.max_tokens_per_step, 65536);
  EXPECT_EQ(p.kv_cache_tokens, 65536);
  // Pages are rounded per sequence: 1000 tokens take 63 pages of 16.
  const std::vector<int64_t> one{1000};
  EXPECT_EQ(plan_engine_sizes(ThroughputPhase::kPrefill, one, 16).kv_cache_tokens, 1008);
  const std::vector<int64_t> ragged{1500};
  EXPECT_EQ(plan_engine_sizes(ThroughputPhase::kPrefill, ragged, 16).max_tokens_per_step, 2048);

  const std::vector<int64_t> decode_ms{64, 512, 128};
  const EngineSizes d = plan_engine_sizes(ThroughputPhase::kDecode, decode_ms, 16);
  EXPECT_EQ(d.max_batch, 512);
  EXPECT_EQ(d.max_tokens_per_step, 512 * 16);
  EXPECT_EQ(d.kv_cache_tokens, 512 * 272);
  // 272 is not a multiple of 32: each sequence gets 9 pages.
  EXPECT_EQ(plan_engine_sizes(ThroughputPhase::kDecode, decode_ms, 32).kv_cache_tokens, 512 * 288);

  EXPECT_THROW(plan_engine_sizes(ThroughputPhase::kDecode, std::vector<int64_t>{}, 16), Error);
  EXPECT_THROW(plan_engine_sizes(ThroughputPhase::kDecode, decode_ms, 0), Error);
}

TEST(ThroughputPlan, BackendNames) {
  EXPECT_EQ(parse_bench_backend("cublaslt").backend, GemmBackend::kCublasLt);
  EXPECT_FALSE(parse_bench_backend("cublaslt").fast_accum);
  EXPECT_TRUE(parse_bench_backend("cublaslt-fa").fast_accum);
  EXPECT_EQ(parse_bench_backend("cublaslt-fa").name, "cublaslt-fa");
  EXPECT_EQ(parse_bench_backend("cusparselt").backend, GemmBackend::kCusparseLt);
  try {
    parse_bench_backend("cutlass");
    FAIL() << "cutlass accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cublaslt-fa"), std::string::npos) << e.what();
  }
}

ThroughputArgs valid_args() {
  ThroughputArgs a;
  a.model = "Llama3.2-1B";
  a.dtype = "int8";
  a.backend = "cusparselt";
  a.sparsity = "2:8";
  a.ms = {512, 1024};
  return a;
}

std::string refusal(ThroughputPhase phase, const ThroughputArgs& args) {
  try {
    validate_throughput_args(phase, args);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ThroughputArgsCheck, DefaultsPerPhase) {
  const ThroughputOptions p = validate_throughput_args(ThroughputPhase::kPrefill, valid_args());
  EXPECT_EQ(p.model_name, "Llama3.2-1B");
  EXPECT_EQ(p.warmup, 2);
  EXPECT_EQ(p.repeats, 5);
  EXPECT_EQ(p.stage, "prefill");
  EXPECT_EQ(p.task, 6);
  EXPECT_EQ(p.sparsity->name(), "2:8");
  EXPECT_TRUE(p.use_tuning);
  const ThroughputOptions d = validate_throughput_args(ThroughputPhase::kDecode, valid_args());
  EXPECT_EQ(d.warmup, 1);
  EXPECT_EQ(d.repeats, 3);
  EXPECT_EQ(d.stage, "decode");
  EXPECT_EQ(d.task, 7);
  ThroughputArgs simple = valid_args();
  simple.stage = "simple";
  simple.warmup = 0;
  simple.repeats = 9;
  EXPECT_EQ(validate_throughput_args(ThroughputPhase::kDecode, simple).task, 5);
  EXPECT_EQ(validate_throughput_args(ThroughputPhase::kDecode, simple).repeats, 9);
  EXPECT_EQ(validate_throughput_args(ThroughputPhase::kDecode, simple).warmup, 0);
}

TEST(ThroughputArgsCheck, RefusesEachBadArgumentByName) {
  const auto phase = ThroughputPhase::kPrefill;
  auto with = [](auto change) {
    ThroughputArgs a = valid_args();
    change(a);
    return a;
  };
  const struct {
    ThroughputArgs args;
    const char* names;
  } cases[] = {
      {with([](ThroughputArgs& a) { a.model = "NoSuchModel"; }), "--model"},
      {with([](ThroughputArgs& a) { a.model = ""; }), "--model"},
      {with([](ThroughputArgs& a) { a.dtype = "fp32"; }), "--dtype"},
      {with([](ThroughputArgs& a) { a.dtype = "int4"; }), "--dtype"},
      {with([](ThroughputArgs& a) { a.backend = "cublas"; }), "--backend"},
      {with([](ThroughputArgs& a) { a.sparsity = "3:8"; }), "--sparsity"},
      {with([](ThroughputArgs& a) { a.sparsity = "2:7"; }), "--sparsity"},
      {with([](ThroughputArgs& a) { a.sparsity = ""; }), "--sparsity"},  // cusparselt without
      {with([](ThroughputArgs& a) { a.backend = "cublaslt"; }), "--sparsity"},  // dense with
      {with([](ThroughputArgs& a) { a.ms = {}; }), "--M"},
      {with([](ThroughputArgs& a) {
         a.ms = {512, 0};
       }),
       "--M"},
      {with([](ThroughputArgs& a) { a.ms = {-1}; }), "--M"},
      {with([](ThroughputArgs& a) {
         a.ms = {512, 512};
       }),
       "--M"},
      {with([](ThroughputArgs& a) { a.warmup = -1; }), "--warmup"},
      {with([](ThroughputArgs& a) { a.repeats = 0; }), "--repeats"},
      {with([](ThroughputArgs& a) { a.min_time_s = -1; }), "--min-time"},
      {with([](ThroughputArgs& a) { a.epilogue = "none"; }), "--epilogue"},
      {with([](ThroughputArgs& a) { a.stage = "decode"; }), "--stage"},
      {with([](ThroughputArgs& a) { a.stage = "kernel"; }), "--stage"},
      {with([](ThroughputArgs& a) { a.task = -2; }), "--task"},
  };
  for (const auto& c : cases) {
    const std::string why = refusal(phase, c.args);
    EXPECT_NE(why.find(std::string("bench prefill: ") + c.names), std::string::npos)
        << "expected a refusal naming " << c.names << ", got '" << why << "'";
  }
}

ThroughputOptions options_for(ThroughputPhase phase, ThroughputArgs args) {
  return validate_throughput_args(phase, args);
}

HostRecord h200() {
  HostRecord h;
  h.gpu_name = "NVIDIA H200";
  h.gpu_short_name = "H200";
  h.cc = 90;
  h.driver = "580.159.04";
  h.hardware_key = "NVIDIA_H200_cc90_cuda13.0_cublaslt130100_cusparselt800";
  h.toolchain = "cuda13.0";
  return h;
}

TEST(ThroughputNames, DefaultFolderAndFileNames) {
  ThroughputArgs a = valid_args();
  a.dtype = "fp8";
  const ThroughputOptions o = options_for(ThroughputPhase::kPrefill, a);
  EXPECT_EQ(default_json_dir(o, h200()).generic_string(),
            "results/prefill/H200_cc90_FP8_cuda13.0/cusparselt/2_8/json");
  EXPECT_EQ(case_file_name(o, 65536), "Llama3.2-1B_M65536.json");

  a.backend = "cublaslt-fa";
  a.sparsity = "";
  a.dtype = "int8";
  a.stage = "simple";
  const ThroughputOptions s = options_for(ThroughputPhase::kDecode, a);
  EXPECT_EQ(default_json_dir(s, h200()).generic_string(),
            "results/simple/H200_cc90_INT8_cuda13.0/cublaslt-fa/json");
  EXPECT_EQ(case_file_name(s, 64), "Llama3.2-1B_decode_M64.json");
}

TEST(ThroughputNames, RerunCommandNamesOnlyWhatDiffersFromTheDefaults) {
  ThroughputArgs a = valid_args();
  a.sparsity = "2:4";
  EXPECT_EQ(rerun_command(options_for(ThroughputPhase::kPrefill, a), 1024),
            "slidesparse bench prefill --model Llama3.2-1B --dtype int8 --backend cusparselt "
            "--sparsity 2:4 --M 1024");
  a.backend = "cublaslt";
  a.sparsity = "";
  a.dtype = "e4m3";  // an alias: the command says the canonical name
  a.warmup = 3;
  a.repeats = 3;  // decode's default: not repeated
  a.epilogue = "kernel";  // not the default: the command names it
  a.no_tuning = true;
  a.stage = "simple";
  a.json_dir = "/tmp/my results";
  EXPECT_EQ(rerun_command(options_for(ThroughputPhase::kDecode, a), 64),
            "slidesparse bench decode --model Llama3.2-1B --dtype fp8 --backend cublaslt --M 64 "
            "--warmup 3 --epilogue kernel --no-tuning --stage simple --json-dir '/tmp/my results'");
  a.task = 9;
  a.stage = "";
  a.json_dir = "";
  a.min_time_s = 2;
  a.model = std::string(SS_MODELS_DIR) + "/Qwen2.5-7B.json";
  const ThroughputOptions o = options_for(ThroughputPhase::kDecode, a);
  EXPECT_EQ(o.model_name, "Qwen2.5-7B");
  EXPECT_EQ(rerun_command(o, 8),
            "slidesparse bench decode --model " + a.model +
                " --dtype fp8 --backend cublaslt --M 8 --warmup 3 --min-time 2 --epilogue kernel "
                "--no-tuning --task 9");
}

TEST(ThroughputMetricsMath, PrefillCountsPromptPlusOutput) {
  const CasePlan plan = plan_case(ThroughputPhase::kPrefill, 4096);  // 4 x 1024, 4100 tokens
  std::vector<RepetitionSample> samples(3);
  samples[0].elapsed_s = 0.1;
  samples[1].elapsed_s = 0.3;
  samples[2].elapsed_s = 0.2;
  samples[0].prefill_gpu_ms = 90;
  samples[1].prefill_gpu_ms = 70;
  samples[2].prefill_gpu_ms = 80;
  EnergyReading energy;
  energy.energy_j = 123.0;  // over the three repetitions
  energy.avg_power_w = 205.0;
  energy.power_samples = 60;
  energy.source = "nvml_energy_counter";
  const ThroughputMetrics m = compute_metrics(plan, samples, 0.6, energy, 2);
  EXPECT_DOUBLE_EQ(m.elapsed_s, 0.2);
  EXPECT_DOUBLE_EQ(m.tokens_per_s, 4100 / 0.2);
  EXPECT_DOUBLE_EQ(m.output_tokens_per_s, 4 / 0.2);
  EXPECT_DOUBLE_EQ(m.requests_per_s, 4 / 0.2);
  EXPECT_DOUBLE_EQ(m.step_ms_median, 80);
  EXPECT_EQ(m.prompt_len, 1024);
  EXPECT_EQ(m.batch, 4);
  EXPECT_EQ(m.output_len, 1);
  EXPECT_EQ(m.warmup, 2);
  EXPECT_EQ(m.repeats, 3);
  EXPECT_DOUBLE_EQ(m.timed_s, 0.6);
  EXPECT_DOUBLE_EQ(*m.energy_j, 41.0);  // per repetition
  EXPECT_DOUBLE_EQ(*m.joules_per_token, 41.0 / 4100);
  EXPECT_DOUBLE_EQ(*m.avg_power_w, 205.0);
  EXPECT_EQ(m.energy_source, "nvml_energy_counter");
}

TEST(ThroughputMetricsMath, DecodeStepIsTheMedianDecodeStepAndEnergyMayBeAbsent) {
  const CasePlan plan = plan_case(ThroughputPhase::kDecode, 64);
  std::vector<RepetitionSample> samples(2);
  samples[0].elapsed_s = 2.0;
  samples[1].elapsed_s = 4.0;
  samples[0].prefill_gpu_ms = 100;  // not a decode step
  samples[1].prefill_gpu_ms = 100;
  samples[0].decode_gpu_ms = {1, 2, 3};
  samples[1].decode_gpu_ms = {4, 5, 6, 7};
  EnergyReading none;
  none.note = "NVML not available: test";
  const ThroughputMetrics m = compute_metrics(plan, samples, 6.0, none, 1);
  EXPECT_DOUBLE_EQ(m.elapsed_s, 3.0);  // median of two is their mean
  EXPECT_DOUBLE_EQ(m.tokens_per_s, 64.0 * 272 / 3.0);
  EXPECT_DOUBLE_EQ(m.output_tokens_per_s, 64.0 * 256 / 3.0);
  EXPECT_DOUBLE_EQ(m.requests_per_s, 64.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.step_ms_median, 4);
  EXPECT_FALSE(m.energy_j);
  EXPECT_FALSE(m.joules_per_token);
  EXPECT_FALSE(m.avg_power_w);
  EXPECT_EQ(m.energy_note, "NVML not available: test");
  EXPECT_THROW(compute_metrics(plan, {}, 0, none, 1), Error);
}

TEST(ThroughputErrors, Classification) {
  auto kind_of = [](auto error) { return classify_case_error(std::make_exception_ptr(error)); };
  EXPECT_EQ(kind_of(NotSupportedError("fp8 needs cc 8.9")).kind, CaseErrorKind::kNotSupported);
  const ClassifiedError oom = kind_of(OutOfMemoryError("cudaMalloc of 2 GiB"));
  EXPECT_EQ(oom.kind, CaseErrorKind::kOutOfMemory);
  EXPECT_EQ(oom.type, "OutOfMemoryError");
  EXPECT_EQ(oom.message, "cudaMalloc of 2 GiB");
  EXPECT_EQ(kind_of(CudaError("illegal address")).type, "CudaError");
  EXPECT_EQ(kind_of(FormatError("bad config")).type, "Error");
  EXPECT_EQ(kind_of(Error("x")).kind, CaseErrorKind::kOther);
  EXPECT_EQ(kind_of(std::runtime_error("y")).type, "Error");
  EXPECT_EQ(classify_case_error(std::make_exception_ptr(42)).type, "Error");
}

}  // namespace
}  // namespace slidesparse
