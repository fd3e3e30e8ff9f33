// The result store: one JSON per case (schema slidesparse.case/1) is the source of truth; the CSV
// of a model in a backend folder is rebuilt from those JSONs. An ok case JSON is never replaced
// by a worse outcome: a failed or skipped rerun of an ok case goes beside it as
// <case>.rerun.json, which the report lists. Every write is atomic (temp file + rename).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/hardware.h"
#include "pipeline/plan.h"

namespace slidesparse::pipeline {

inline constexpr const char* kCaseSchema = "slidesparse.case/1";

// What a case file holds, as far as resuming needs to know.
struct StoredCase {
  bool exists = false;
  bool readable = false;  // parsed, with the case schema and a status
  std::string status;     // ok | failed | skipped
  std::string hardware_key;
  std::string build;       // the build that measured it; empty where not recorded
  std::string error_type;  // failed cases
  std::string reason;      // error message or skip reason
  nlohmann::json doc;      // the whole document when readable
  std::string problem;     // why it is not readable

  // Done for this hardware: not run again (unless forced).
  bool done_for(const std::string& key) const {
    return readable && hardware_key == key && (status == "ok" || status == "skipped");
  }
};

StoredCase read_case(const std::filesystem::path& file);

// "<stem>.rerun.json" beside "<stem>.json".
std::filesystem::path rerun_path(const std::filesystem::path& case_file);

// Stores `doc` as `json_dir`/`file_name` unless that file holds an ok case and `doc` is not ok:
// then as its .rerun.json. An ok result replaces an earlier .rerun.json (the case now passes).
// Returns the path written.
std::filesystem::path store_case(const std::filesystem::path& json_dir,
                                 const std::string& file_name, const nlohmann::json& doc);

// The fields of a case JSON the pipeline writes itself (a skip it decides, or a child's death).
struct CaseRecord {
  const BenchGroup* group = nullptr;
  int64_t m = 0;
  std::string status;      // failed | skipped
  std::string error_type;  // Crash | Timeout | Error (failed)
  std::string message;     // failed
  std::string skip_reason;
  std::string command;  // reruns this case alone
  std::string started_at;
  double wall_s = 0;
  std::optional<int> exit_code;  // how the child ended, for Crash
  std::optional<int> signal;
};
nlohmann::json make_case_json(const CaseRecord& record, const RunHardware& hardware);

// Rebuilds <folder>/<model>.csv from the case JSONs in <folder>/json/ that name `model` (.rerun
// files left out: the CSV shows each case's standing result). Columns: model, [phase,] M, status,
// tokens_per_s, output_tokens_per_s, requests_per_s, elapsed_s, step_ms_median, prompt_len,
// batch, output_len, warmup, repeats, avg_power_w, energy_j, joules_per_token, error_type, note.
// Returns the number of rows; writes nothing when no JSON names the model.
int rebuild_csv(const std::filesystem::path& folder, const std::string& model, bool with_phase);

// UTC "2026-12-02T19:00:00Z".
std::string utc_now_text();

}  // namespace slidesparse::pipeline
