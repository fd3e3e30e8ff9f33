// What a prepare-bench run will do: its options, and the plan built from them — the tuning tasks
// (3 coarse, 4 fine) and the benchmark groups of tasks 5 (simple), 6 (prefill) and 7 (decode).
// A group is what one child process runs: one (stage, phase, model, precision, backend, pattern)
// with its Ms, so the model is built once per child. Also the result layout:
//   <results>/<stage>/<GPU>_cc<XY>_<DTYPE>_<toolchain>/<backend>[/<Z_L>]/json/<case>.json
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/hardware.h"
#include "slidesparse/sparsity.h"

namespace slidesparse::pipeline {

// One column of the benchmark matrix: a dense baseline or a cuSPARSELt pattern.
struct BackendChoice {
  std::string backend;               // cublaslt | cublaslt-fa | cusparselt
  std::optional<Sparsity> sparsity;  // cusparselt only

  std::string variant() const;  // "cublaslt", "cublaslt-fa", "2:8"
  // Folder below the precision folder: "cublaslt", "cublaslt-fa", "cusparselt/2_8".
  std::filesystem::path folder() const;
};

// "cublaslt", "cublaslt-fa", "2:4" / "2_8" (a pattern), "cusparselt" (2:4, 2:6, 2:8, 2:10);
// duplicates dropped, order kept. Throws Error naming what is accepted.
std::vector<BackendChoice> parse_backends(const std::vector<std::string>& names);

struct PipelineOptions {
  std::vector<std::string> models{"Llama3.2-1B", "Llama3.2-3B", "Qwen2.5-7B", "Qwen2.5-14B"};
  std::vector<std::string> dtypes{"int8", "fp8"};
  std::vector<std::string> backends{"cublaslt", "cublaslt-fa", "2:4", "2:6", "2:8", "2:10"};
  std::vector<int> tasks{3, 4, 5, 6, 7};
  std::vector<int64_t> prefill_m{512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
  std::vector<int64_t> decode_m{64, 128, 256, 512};
  std::filesystem::path results_dir = "results";
  std::filesystem::path
      tuning_dir;  // empty: the tuner's default ($SLIDESPARSE_TUNING_DIR, tuning/)
  std::optional<double>
      time_budget_s;  // no child starts after it; the call ends by budget + timeout
  double case_timeout_s = 600;
  std::filesystem::path runner;  // the program run as `<runner> bench|tune ...`; empty: this one
  bool dry_run = false;
  bool force = false;  // rerun ok cases too (a failing rerun goes beside them as <case>.rerun.json)
  // Rerun the ok cases that another build measured (their JSON's "build" is not this one's), as
  // --force does, and keep those this build measured: a run resumed with new code ends up
  // measured by one build, however many calls it takes.
  bool rerun_other_builds = false;
  // Tests and $SLIDESPARSE_FAKE_GPU: run as if on this GPU instead of asking the driver.
  std::optional<RunHardware> hardware;
};

// Checks and normalises the options (lists non-empty, known tasks and dtypes, M >= 1, model names
// as in models/); throws Error naming the bad option.
void validate_options(const PipelineOptions& options);

inline constexpr const char* kSimpleModel = "Llama3.2-1B";
inline constexpr int64_t kSimplePrefillM = 512;
inline constexpr int64_t kSimpleDecodeM = 64;

std::string task_name(int task);  // 3 "coarse tuning" ... 7 "decode"

struct BenchGroup {
  int task = 0;
  std::string stage;  // prefill | decode | simple
  std::string phase;  // prefill | decode: the `bench` subcommand (== stage except for simple)
  std::string model;
  std::string dtype;  // int8 | fp8 | bf16
  BackendChoice backend;
  std::vector<int64_t> ms;       // ascending
  std::filesystem::path folder;  // <results>/<stage>/<hw>/<backend>[/<Z_L>]
  std::string skip_reason;       // not empty: recorded skipped by the pipeline itself, no child
  double model_params_b = 1;     // parameters in billions, for the progress weights

  std::filesystem::path json_dir() const { return folder / "json"; }
  // "<model>_M<M>.json"; stage simple: "<model>_<phase>_M<M>.json".
  std::string case_file(int64_t m) const;
  // "prefill Qwen2.5-7B fp8 2:8"
  std::string label() const;
  // Expected relative cost of one case, for the ETA (not a measurement).
  double case_weight(int64_t m) const;
};

// A benchmark group as the options plan it, before build_plan names its folder and weighs it:
// the one expansion of tasks 5-7 that the pipeline runs and the report counts missing cases by.
struct PlannedBench {
  int task = 0;
  std::string stage;  // prefill | decode | simple
  std::string phase;  // prefill | decode
  std::string model;
  std::string dtype;
  BackendChoice backend;
  std::vector<int64_t> ms;  // ascending, unique
};

// The benchmark groups of tasks 5-7 in `options` (task order, then precision, model, backend).
// Reads no model file and asks no GPU; throws Error on a backend name parse_backends refuses.
std::vector<PlannedBench> planned_benchmarks(const PipelineOptions& options);

struct TuneTask {
  int task = 0;       // 3 or 4
  std::string stage;  // coarse | fine
  std::vector<std::string> models;
  std::vector<std::string> dtypes;      // fp8 left out below cc 8.9
  std::vector<std::string> sparsities;  // fine: the run's patterns
  bool fast_accum = false;              // the run has cublaslt-fa and fp8
  std::string skip_reason;              // not empty: nothing to tune (no pattern in the run, ...)
  // Table files this stage writes under <tuning>/<hardware key>/.
  std::vector<std::string> output_files() const;
};

struct Plan {
  std::vector<int> tasks;  // ascending
  std::vector<TuneTask> tune_tasks;
  std::vector<BenchGroup> groups;  // task order, then precision, model, backend
};

// `hardware` names the result folders; without a GPU (dry run) pass nullopt and the folders read
// "GPU_ccXX_<DTYPE>_<toolchain>".
Plan build_plan(const PipelineOptions& options, const std::optional<RunHardware>& hardware);

// The argv of the child that runs `ms` of `group`, writing into `json_dir`.
std::vector<std::string> bench_argv(const std::filesystem::path& runner, const BenchGroup& group,
                                    const std::vector<int64_t>& ms,
                                    const std::filesystem::path& json_dir,
                                    const std::filesystem::path& marker);
std::vector<std::string> tune_argv(const std::filesystem::path& runner, const TuneTask& task,
                                   const std::filesystem::path& tuning_dir);

// One shell line: words quoted where the shell would split or expand them.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace slidesparse::pipeline
