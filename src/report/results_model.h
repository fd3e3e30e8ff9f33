// The recorded results of a run, parsed from a results folder into plain structs: the case JSONs
// (schema slidesparse.case/1), the run record (results/run.json, slidesparse.run/1), `bench kernel`
// JSONs, the tuning tables the run wrote, and an inventory of every file. Nothing here formats
// text; the report's writers read these structs only. Unreadable files are recorded, never thrown.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slidesparse::report {

enum class CaseStatus { kOk, kFailed, kSkipped };

struct GpuRecord {
  std::string name;    // "NVIDIA H200"
  std::string cc;      // "9.0"
  std::string driver;  // "580.159.04"
};

struct CaseError {
  std::string type;  // CudaError | OutOfMemoryError | Timeout | Crash | Error
  std::string message;
};

// The measured numbers of one ok case. Energy is absent where NVML gave no power reading.
struct CaseMetrics {
  int64_t prompt_len = 0;
  int64_t batch = 0;
  int64_t output_len = 0;
  int64_t warmup = 0;
  int64_t repeats = 0;
  double elapsed_s = 0;     // median per repetition
  double tokens_per_s = 0;  // prompt + output tokens, as `vllm bench throughput`
  double output_tokens_per_s = 0;
  double requests_per_s = 0;
  double step_ms_median = 0;
  std::optional<double> avg_power_w;
  std::optional<double> energy_j;
  std::optional<double> joules_per_token;
};

struct CaseResult {
  std::filesystem::path file;  // relative to the results folder
  int task = 0;
  std::string stage;     // prefill | decode | simple
  std::string model;     // "Qwen2.5-7B"
  std::string dtype;     // int8 | fp8 | bf16
  std::string backend;   // cublaslt | cublaslt-fa | cusparselt
  std::string sparsity;  // "2:8"; empty for dense
  int64_t m = 0;
  CaseStatus status = CaseStatus::kOk;
  std::optional<CaseError> error;
  std::string skip_reason;
  std::string command;  // reruns this case alone
  std::string hardware_key;
  std::string build;  // the code that measured it ("0.1.0+src.1a2b..."); empty: not recorded
  GpuRecord gpu;
  std::string started_at;
  double wall_s = 0;
  std::optional<CaseMetrics> metrics;

  // The column this case belongs to: the backend for dense, the pattern ("2:8") for cuSPARSELt.
  std::string variant() const { return sparsity.empty() ? backend : sparsity; }
};

struct TaskRecord {
  int id = 0;
  std::string name;
  std::string status;  // skipped | succeeded | partly_failed | failed | not_run
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t skipped = 0;
  double wall_s = 0;
  double gpu_s = 0;
  std::string note;
  std::vector<std::string> outputs;  // paths as recorded ("tuning/...")
};

// A benchmark group the run's options plan (run.json "options", expanded as prepare-bench
// expands them): its cases belong to the run's matrix whether or not they were recorded.
struct PlannedGroup {
  std::string stage;  // prefill | decode | simple-prefill | simple-decode (as CaseResult::stage)
  std::string dtype;
  std::string model;
  std::string variant;  // as CaseResult::variant()
  std::vector<int64_t> ms;
};

struct RunRecord {
  std::string hardware_key;
  GpuRecord gpu;
  std::vector<std::pair<std::string, std::string>> versions;  // in file order, values as text
  std::string started_at;
  std::string finished_at;  // empty while the run is unfinished
  std::vector<TaskRecord> tasks;
  std::vector<std::string> notes;
  std::vector<PlannedGroup> plan;  // empty where run.json holds no options
  std::string plan_error;          // why the options could not be expanded
};

// One `linear == "sum"` row of a `bench kernel` JSON: the four linears of a model summed.
struct KernelSum {
  int64_t m = 0;
  std::string variant;  // "2:8"
  double gemm_ms = 0;
  double layer_ms = 0;
  double speedup_gemm = 0;   // over dense cuBLASLt, GEMM only
  double speedup_layer = 0;  // quant + GEMM + dequant
};

struct KernelBenchFile {
  std::filesystem::path file;  // relative to the results folder
  std::string model;
  std::string dtype;
  std::string backend;
  std::string device;
  std::string epilogue;
  std::string timestamp;
  std::vector<KernelSum> sums;
};

// A tuning table named among a task's outputs.
struct TuningTableInfo {
  std::string path;                // as recorded in run.json
  std::filesystem::path resolved;  // where it was found (empty when not found)
  bool found = false;
  int64_t entries = 0;  // gemm + kernel entries
  uint64_t bytes = 0;
  std::vector<int> tasks;  // every task that names it (coarse and fine both write kernels.json)
  std::string error;       // why it could not be read
};

// Files of one folder of the results (json/ folders are counted into their parent).
struct InventoryFolder {
  std::string
      folder;  // relative, "prefill/H200_cc90_INT8_cuda13.0/cusparselt/2_8"; "." for the top
  int64_t case_jsons = 0;
  int64_t csvs = 0;
  int64_t others = 0;
  uint64_t bytes = 0;
  std::vector<std::string> other_names;  // file names of the others (run.json, logs, kernel JSONs)
};

// A rerun that failed after an ok result of the same case: prepare-bench keeps the ok JSON and
// writes the rerun's outcome beside it as <case>.rerun.json.
struct RerunRecord {
  std::string file;  // relative
  std::string status;
  std::string error_type;
  std::string message;
};

struct UnreadableFile {
  std::string file;  // relative
  std::string error;
};

struct ResultsModel {
  std::filesystem::path dir;
  std::optional<RunRecord> run;
  std::string hardware_key;       // the run's, else the most common among the cases
  std::vector<CaseResult> cases;  // of hardware_key only, sorted by stage, dtype, model, variant, M
  std::vector<std::pair<std::string, int64_t>> other_hardware;  // keys left out, with case counts
  std::vector<KernelBenchFile> kernel_benches;
  std::vector<TuningTableInfo> tuning_tables;
  std::vector<InventoryFolder> inventory;
  std::vector<RerunRecord> reruns;
  std::vector<UnreadableFile> unreadable;
};

// Reads every file under `dir` (which must exist and be a folder: else throws Error). Relative
// tuning paths of run.json are looked for under `dir`, its parent and the working folder.
ResultsModel load_results(const std::filesystem::path& dir);

// Order of stages and of variants in every table: prefill, decode, simple-prefill, simple-decode,
// then others by name;
// cublaslt, cublaslt-fa, then patterns by L, then others by name.
int stage_rank(const std::string& stage);
int variant_rank(const std::string& variant);

}  // namespace slidesparse::report
