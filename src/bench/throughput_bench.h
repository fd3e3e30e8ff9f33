// `slidesparse bench prefill` and `bench decode`: tokens/s, requests/s, elapsed and GPU energy per
// case (one M), with the reference system's definitions (throughput_plan.h). One engine per
// invocation serves every M; each case is one JSON file of schema slidesparse.case/1 (the report
// and prepare-bench read it), written atomically. A case's failure is recorded and the next M
// runs; a CUDA fault that leaves the context unusable ends the invocation with exit code 3 so the
// parent reruns the remaining Ms in a fresh process. Written against ThroughputModel and
// EnergyMeter so the logic runs on the CPU under test.
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/energy_meter.h"
#include "bench/throughput_model.h"
#include "bench/throughput_plan.h"

namespace slidesparse {

// Defaults of the repetitions (the reference system's stable-median counts).
inline constexpr int kPrefillDefaultWarmup = 2;
inline constexpr int kPrefillDefaultRepeats = 5;
inline constexpr int kDecodeDefaultWarmup = 1;
inline constexpr int kDecodeDefaultRepeats = 3;
inline constexpr int kDecodeWarmupSteps = 16;  // a decode warm-up is prefill + 16 decode steps
// Timed repetitions go on past `repeats` until they span this long, so NVML's energy counter
// and power readings (updated every few to ~100 ms) resolve the window; at most kMaxRepeats.
inline constexpr double kDefaultMinTimedSeconds = 0.5;
inline constexpr int kMaxRepeats = 1000;

// Exit codes of an invocation (besides CLI11's own for unparsable arguments).
inline constexpr int kExitAllOkOrSkipped = 0;
inline constexpr int kExitSomeFailed = 2;
inline constexpr int kExitContextLost = 3;

// The command line as given (strings), before validation.
struct ThroughputArgs {
  std::string model;
  std::string dtype;
  std::string backend;
  std::string sparsity;  // "" when not given
  std::vector<int64_t> ms;
  std::optional<int> warmup;
  std::optional<int> repeats;
  std::optional<double> min_time_s;
  std::string epilogue = "fused";
  bool no_tuning = false;
  std::string stage;  // "" = the phase's own
  std::optional<int> task;
  std::string json_dir;
  std::string case_marker;
};

struct ThroughputOptions {
  ThroughputPhase phase = ThroughputPhase::kPrefill;
  std::string model;       // as given: reruns use it
  std::string model_name;  // the config's name: files and JSON ("Qwen2.5-7B")
  DType dtype = DType::kI8;
  BenchBackend backend;
  std::optional<Sparsity> sparsity;
  std::vector<int64_t> ms;
  int warmup = kPrefillDefaultWarmup;
  int repeats = kPrefillDefaultRepeats;
  double min_timed_s = kDefaultMinTimedSeconds;
  Epilogue epilogue = Epilogue::kFused;
  bool use_tuning = true;
  std::string stage = "prefill";  // prefill | decode | simple
  int task = 6;                   // 6 prefill, 7 decode, 5 simple unless given
  std::optional<std::filesystem::path> json_dir;
  std::optional<std::filesystem::path> case_marker;
  uint64_t prompt_seed = 1234;  // random prompt token ids
  int page_size = 16;           // KV page size the engine is built with
};

// Checks every argument (model known, dtype int8/fp8/bf16, backend, pattern, cusparselt with a
// pattern and dense without, M >= 1 and no M twice, counts in range, stage / epilogue names)
// without touching a GPU. Throws Error starting "bench <phase>: --<option>: ...".
ThroughputOptions validate_throughput_args(ThroughputPhase phase, const ThroughputArgs& args);

// The machine as the case JSONs name it.
struct HostRecord {
  std::string gpu_name;               // "NVIDIA H200"
  std::string gpu_short_name;         // "H200"
  int cc = 0;                         // 90
  std::optional<std::string> driver;  // "580.159.04" (NVML), absent without NVML
  std::string hardware_key;           // the tuning table's key folder name
  std::string toolchain;              // "cuda13.0"
};

// results/<stage>/<GPU>_cc<XY>_<DTYPE>_<toolchain>/<backend>[/<Z_L>]/json
std::filesystem::path default_json_dir(const ThroughputOptions& options, const HostRecord& host);
// <model>_M<M>.json; with stage simple <model>_<phase>_M<M>.json.
std::string case_file_name(const ThroughputOptions& options, int64_t m);
// The command that reruns the case at `m` alone (options that differ from the defaults only).
std::string rerun_command(const ThroughputOptions& options, int64_t m);

// One timed repetition.
struct RepetitionSample {
  double elapsed_s = 0;               // start_batch to the last step's tokens on the host
  double prefill_gpu_ms = 0;          // the prefill step
  std::vector<double> decode_gpu_ms;  // each decode step
};

struct ThroughputMetrics {
  int64_t prompt_len = 0;
  int64_t batch = 0;  // sequences
  int64_t output_len = 0;
  int warmup = 0;
  int repeats = 0;          // timed repetitions actually run
  double elapsed_s = 0;     // median over the repetitions
  double tokens_per_s = 0;  // (prompt + output tokens) / elapsed
  double output_tokens_per_s = 0;
  double requests_per_s = 0;
  double step_ms_median = 0;  // prefill: the step; decode: the decode steps
  double timed_s = 0;         // wall time of all timed repetitions (the energy window)
  std::optional<double> avg_power_w;
  std::optional<double> energy_j;          // per repetition
  std::optional<double> joules_per_token;  // energy_j / the tokens counted in tokens_per_s
  int64_t power_samples = 0;
  std::string energy_source;
  std::string energy_note;
};

// Throws Error when `samples` is empty.
ThroughputMetrics compute_metrics(const CasePlan& plan,
                                  const std::vector<RepetitionSample>& samples, double timed_s,
                                  const EnergyReading& energy, int warmup);

// How a case's exception is recorded.
enum class CaseErrorKind : uint8_t { kNotSupported, kOutOfMemory, kCuda, kOther };
struct ClassifiedError {
  CaseErrorKind kind = CaseErrorKind::kOther;
  std::string type;  // OutOfMemoryError | CudaError | Error (skips carry the message only)
  std::string message;
};
ClassifiedError classify_case_error(std::exception_ptr error);

// The outcome of one case, as its JSON holds it.
struct CaseRecord {
  CasePlan plan;
  std::string status;  // ok | failed | skipped
  std::optional<ThroughputMetrics> metrics;
  std::optional<ClassifiedError> error;
  std::string skip_reason;
  std::string started_at;  // ISO 8601 UTC
  double wall_s = 0;
  std::string engine_description;  // "" when no engine was loaded
  double engine_load_s = 0;
};

nlohmann::json case_json(const ThroughputOptions& options, const HostRecord& host,
                         const CaseRecord& record);

// What the benchmark runs against: the real engine / NVML / CUDA in the CLI, stubs in tests.
struct ThroughputEnvironment {
  std::function<std::unique_ptr<ThroughputModel>(const EngineSpec&)> load_model;
  EnergyMeter* energy = nullptr;  // null: no energy, energy_absent_note says why
  std::string energy_absent_note;
  // A message when the CUDA context is unusable after an error (sticky fault), else nullopt.
  std::function<std::optional<std::string>()> context_fault;
  HostRecord host;
};

struct ThroughputRunResult {
  int exit_code = kExitAllOkOrSkipped;
  int ok = 0;
  int failed = 0;
  int skipped = 0;
  bool context_lost = false;
  std::vector<std::filesystem::path> files;  // case JSONs written, in order
};

// Runs every case of `options`, writing one JSON per case and a line per case to `out`.
// Throws only for what is no case's fault (the results folder cannot be written).
ThroughputRunResult run_throughput_bench(const ThroughputOptions& options,
                                         ThroughputEnvironment& environment, std::ostream& out);

// The real environment's pieces: this process's GPU and libraries (needs a GPU), and the CUDA
// context check (cudaGetLastError / cudaDeviceSynchronize still failing after an error).
HostRecord query_host_record(const std::optional<std::string>& driver_version);
std::optional<std::string> cuda_context_fault();

}  // namespace slidesparse
