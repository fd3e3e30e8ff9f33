// <results>/run.json (schema slidesparse.run/1): the record of one run across the calls that
// resume it — hardware, versions, start and finish (null while unfinished), per task its status
// (skipped | succeeded | partly_failed | failed | not_run), case counts, wall and GPU time, a
// note and its outputs; the run's notes. Read back on every call and updated, never appended to.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace slidesparse::pipeline {

inline constexpr const char* kRunSchema = "slidesparse.run/1";

struct TaskRecord {
  int id = 0;
  std::string name;
  std::string status = "not_run";
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t skipped = 0;
  double wall_s = 0;  // summed over the calls of the run
  double gpu_s = 0;   // wall time of the children that used the GPU, summed
  std::string note;
  std::vector<std::string> outputs;
  int64_t cases_run = 0;   // cases (tuning: children) this run produced, all calls together
  nlohmann::json covered;  // tuning: {models, dtypes, sparsities, fast_accum} it completed
};

struct RunRecord {
  std::string hardware_key;
  nlohmann::json gpu;       // {name, cc, driver}, null without a GPU
  nlohmann::json versions;  // {cuda, cuda_runtime, cuda_driver_api, cublaslt, cusparselt, driver}
  std::string started_at;
  std::optional<std::string> finished_at;
  std::vector<TaskRecord> tasks;  // by id
  std::vector<std::string> notes;
  int64_t calls = 0;       // prepare-bench calls that worked on this run
  nlohmann::json options;  // the last call's options
  // The matrix of every call of the run ({models, dtypes, backends, tasks, prefill_M, decode_M}),
  // each once: a call that resumes with a subset (--dtype int8 --tasks 7) does not shrink the
  // run's matrix, so the report still counts what no call has run yet as missing.
  nlohmann::json plans = nlohmann::json::array();
  // The build of every call (slidesparse/build_info.h), each once, in order: a run resumed with
  // other code says so here, and its cases say which build measured them.
  std::vector<std::string> builds;

  TaskRecord& task(int id);  // adds it (named) when absent, keeping the list sorted by id
  const TaskRecord* find_task(int id) const;
  void add_note(const std::string& note);  // once
  // Drops the notes that start with `prefix` (notes of an earlier call that no longer hold).
  void drop_notes(const std::string& prefix);
  // Adds the plan keys of `options` to `plans` unless an equal entry is there. A record written
  // before `plans` existed first gets its last call's options, so that call's matrix is kept.
  void add_plan(const nlohmann::json& options);
  void add_build(const std::string& id);  // once

  nlohmann::json to_json() const;
  static RunRecord from_json(const nlohmann::json& j);  // throws Error on a wrong schema
};

// nullopt when the file does not exist; throws Error naming the file when it cannot be read.
std::optional<RunRecord> load_run_record(const std::filesystem::path& file);
void save_run_record(const std::filesystem::path& file, const RunRecord& record);

}  // namespace slidesparse::pipeline
