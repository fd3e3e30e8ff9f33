// run.json (see run_record.h).
#include "pipeline/run_record.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "io/safetensors.h"
#include "pipeline/plan.h"
#include "slidesparse/error.h"

namespace slidesparse::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

template <class T>
T number_of(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return T{};
  return it->get<T>();
}

}  // namespace

TaskRecord& RunRecord::task(int id) {
  for (TaskRecord& t : tasks)
    if (t.id == id) return t;
  TaskRecord t;
  t.id = id;
  t.name = task_name(id);
  tasks.push_back(std::move(t));
  std::sort(tasks.begin(), tasks.end(),
            [](const TaskRecord& a, const TaskRecord& b) { return a.id < b.id; });
  for (TaskRecord& have : tasks)
    if (have.id == id) return have;
  throw Error("RunRecord::task: lost task " + std::to_string(id));
}

const TaskRecord* RunRecord::find_task(int id) const {
  for (const TaskRecord& t : tasks)
    if (t.id == id) return &t;
  return nullptr;
}

void RunRecord::add_note(const std::string& note) {
  if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
}

void RunRecord::drop_notes(const std::string& prefix) {
  notes.erase(std::remove_if(notes.begin(), notes.end(),
                             [&](const std::string& n) { return n.rfind(prefix, 0) == 0; }),
              notes.end());
}

void RunRecord::add_plan(const json& call_options) {
  auto plan_of = [](const json& o) {
    json plan = json::object();
    for (const char* key : {"models", "dtypes", "backends", "tasks", "prefill_M", "decode_M"})
      if (auto it = o.find(key); it != o.end()) plan[key] = *it;
    return plan;
  };
  if (!plans.is_array()) plans = json::array();
  if (plans.empty() && options.is_object() && options.contains("models"))
    plans.push_back(plan_of(options));
  json plan = plan_of(call_options);
  if (std::find(plans.begin(), plans.end(), plan) == plans.end()) plans.push_back(std::move(plan));
}

void RunRecord::add_build(const std::string& id) {
  if (std::find(builds.begin(), builds.end(), id) == builds.end()) builds.push_back(id);
}

json RunRecord::to_json() const {
  json j;
  j["schema"] = kRunSchema;
  j["tool"] = "slidesparse prepare-bench";
  j["hardware_key"] = hardware_key;
  j["gpu"] = gpu;
  j["versions"] = versions.is_null() ? json::object() : versions;
  j["started_at"] = started_at;
  j["finished_at"] = finished_at ? json(*finished_at) : json(nullptr);
  j["calls"] = calls;
  j["options"] = options;
  j["plans"] = plans.is_array() ? plans : json::array();
  j["builds"] = builds;
  json list = json::array();
  for (const TaskRecord& t : tasks) {
    json tj = {{"id", t.id},           {"name", t.name},          {"status", t.status},
               {"ok", t.ok},           {"failed", t.failed},      {"skipped", t.skipped},
               {"wall_s", t.wall_s},   {"gpu_s", t.gpu_s},        {"note", t.note},
               {"outputs", t.outputs}, {"cases_run", t.cases_run}};
    if (!t.covered.is_null()) tj["covered"] = t.covered;
    list.push_back(std::move(tj));
  }
  j["tasks"] = std::move(list);
  j["notes"] = notes;
  return j;
}

RunRecord RunRecord::from_json(const json& j) {
  SS_REQUIRE(j.is_object() && text_of(j, "schema") == kRunSchema,
             "not a " << kRunSchema << " document");
  RunRecord r;
  r.hardware_key = text_of(j, "hardware_key");
  r.gpu = j.value("gpu", json(nullptr));
  r.versions = j.value("versions", json::object());
  r.started_at = text_of(j, "started_at");
  if (auto it = j.find("finished_at"); it != j.end() && it->is_string())
    r.finished_at = it->get<std::string>();
  r.calls = number_of<int64_t>(j, "calls");
  r.options = j.value("options", json(nullptr));
  if (auto it = j.find("plans"); it != j.end() && it->is_array()) r.plans = *it;
  if (auto it = j.find("builds"); it != j.end() && it->is_array())
    for (const json& b : *it)
      if (b.is_string()) r.builds.push_back(b.get<std::string>());
  if (auto it = j.find("tasks"); it != j.end() && it->is_array())
    for (const json& tj : *it) {
      TaskRecord t;
      t.id = number_of<int>(tj, "id");
      t.name = text_of(tj, "name");
      if (t.name.empty()) t.name = task_name(t.id);
      t.status = text_of(tj, "status");
      if (t.status.empty()) t.status = "not_run";
      t.ok = number_of<int64_t>(tj, "ok");
      t.failed = number_of<int64_t>(tj, "failed");
      t.skipped = number_of<int64_t>(tj, "skipped");
      t.wall_s = number_of<double>(tj, "wall_s");
      t.gpu_s = number_of<double>(tj, "gpu_s");
      t.note = text_of(tj, "note");
      if (auto o = tj.find("outputs"); o != tj.end() && o->is_array())
        for (const json& p : *o)
          if (p.is_string()) t.outputs.push_back(p.get<std::string>());
      t.cases_run = number_of<int64_t>(tj, "cases_run");
      t.covered = tj.value("covered", json(nullptr));
      r.tasks.push_back(std::move(t));
    }
  std::sort(r.tasks.begin(), r.tasks.end(),
            [](const TaskRecord& a, const TaskRecord& b) { return a.id < b.id; });
  if (auto it = j.find("notes"); it != j.end() && it->is_array())
    for (const json& n : *it)
      if (n.is_string()) r.notes.push_back(n.get<std::string>());
  return r;
}

std::optional<RunRecord> load_run_record(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  try {
    std::ifstream in(file, std::ios::binary);
    SS_REQUIRE(in, "cannot open");
    std::stringstream text;
    text << in.rdbuf();
    return RunRecord::from_json(json::parse(text.str()));
  } catch (const std::exception& e) {
    throw Error("prepare-bench: cannot read " + file.string() + ": " + e.what() +
                " (move it away to start a new run record)");
  }
}

void save_run_record(const fs::path& file, const RunRecord& record) {
  std::error_code ec;
  fs::create_directories(file.parent_path().empty() ? fs::path(".") : file.parent_path(), ec);
  write_file_atomic(file, record.to_json().dump(1) + "\n");
}

}  // namespace slidesparse::pipeline
