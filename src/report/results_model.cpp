// Parsing of a results folder (see results_model.h). Tolerant: a missing optional key reads as
// empty, a malformed file is listed in `unreadable` and the rest of the report still appears.
#include "report/results_model.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "pipeline/plan.h"
#include "slidesparse/error.h"
#include "slidesparse/sparsity.h"

namespace slidesparse::report {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string text_of(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return it->dump();
}

int64_t int_of(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  return it->get<int64_t>();
}

double number_of(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  return it->get<double>();
}

std::optional<double> optional_number(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

GpuRecord gpu_of(const json& j) {
  GpuRecord g;
  if (auto it = j.find("gpu"); it != j.end() && it->is_object()) {
    g.name = text_of(*it, "name");
    g.cc = text_of(*it, "cc");
    g.driver = text_of(*it, "driver");
  }
  return g;
}

// The stage a case is counted under: the simple benchmark's phases stay apart ("simple-decode").
std::string stage_key(const std::string& stage, const std::string& phase) {
  return phase.empty() || phase == stage ? stage : stage + "-" + phase;
}

CaseResult parse_case(const json& j, const fs::path& rel) {
  CaseResult c;
  c.file = rel;
  c.task = static_cast<int>(int_of(j, "task"));
  c.stage = stage_key(text_of(j, "stage"), text_of(j, "phase"));
  c.model = text_of(j, "model");
  c.dtype = text_of(j, "dtype");
  c.backend = text_of(j, "backend");
  c.sparsity = text_of(j, "sparsity");
  c.m = int_of(j, "M");
  SS_REQUIRE(!c.stage.empty() && !c.model.empty() && !c.backend.empty() && c.m > 0,
             "a case needs stage, model, backend and M > 0");
  const std::string status = text_of(j, "status");
  if (status == "ok")
    c.status = CaseStatus::kOk;
  else if (status == "failed")
    c.status = CaseStatus::kFailed;
  else if (status == "skipped")
    c.status = CaseStatus::kSkipped;
  else
    throw Error("unknown status '" + status + "'");
  if (auto it = j.find("error"); it != j.end() && it->is_object())
    c.error = CaseError{text_of(*it, "type"), text_of(*it, "message")};
  c.skip_reason = text_of(j, "skip_reason");
  c.command = text_of(j, "command");
  c.hardware_key = text_of(j, "hardware_key");
  c.build = text_of(j, "build");
  c.gpu = gpu_of(j);
  c.started_at = text_of(j, "started_at");
  c.wall_s = number_of(j, "wall_s");
  if (auto it = j.find("metrics"); it != j.end() && it->is_object()) {
    const json& mj = *it;
    CaseMetrics m;
    m.prompt_len = int_of(mj, "prompt_len");
    m.batch = int_of(mj, "batch");
    m.output_len = int_of(mj, "output_len");
    m.warmup = int_of(mj, "warmup");
    m.repeats = int_of(mj, "repeats");
    m.elapsed_s = number_of(mj, "elapsed_s");
    m.tokens_per_s = number_of(mj, "tokens_per_s");
    m.output_tokens_per_s = number_of(mj, "output_tokens_per_s");
    m.requests_per_s = number_of(mj, "requests_per_s");
    m.step_ms_median = number_of(mj, "step_ms_median");
    m.avg_power_w = optional_number(mj, "avg_power_w");
    m.energy_j = optional_number(mj, "energy_j");
    m.joules_per_token = optional_number(mj, "joules_per_token");
    c.metrics = m;
  }
  // An ok case without numbers cannot enter a table; treat it as what it is.
  SS_REQUIRE(c.status != CaseStatus::kOk || c.metrics.has_value(), "an ok case has no metrics");
  return c;
}

// The groups of tasks 5-7 that run.json's options plan (prepare-bench writes every key below).
std::vector<PlannedGroup> plan_of(const json& options) {
  pipeline::PipelineOptions o;
  o.models = options.at("models").get<std::vector<std::string>>();
  o.dtypes = options.at("dtypes").get<std::vector<std::string>>();
  o.backends = options.at("backends").get<std::vector<std::string>>();
  o.tasks = options.at("tasks").get<std::vector<int>>();
  o.prefill_m = options.at("prefill_M").get<std::vector<int64_t>>();
  o.decode_m = options.at("decode_M").get<std::vector<int64_t>>();
  std::vector<PlannedGroup> out;
  for (const pipeline::PlannedBench& b : pipeline::planned_benchmarks(o))
    out.push_back({stage_key(b.stage, b.phase), b.dtype, b.model, b.backend.variant(), b.ms});
  return out;
}

RunRecord parse_run(const json& j) {
  RunRecord r;
  r.hardware_key = text_of(j, "hardware_key");
  r.gpu = gpu_of(j);
  if (auto it = j.find("versions"); it != j.end() && it->is_object())
    for (auto v = it->begin(); v != it->end(); ++v)
      r.versions.emplace_back(v.key(), text_of(*it, v.key().c_str()));
  r.started_at = text_of(j, "started_at");
  r.finished_at = text_of(j, "finished_at");
  // Every call's matrix (`plans`); a record from before `plans` has only its last call's options.
  std::vector<const json*> call_plans;
  if (auto it = j.find("plans"); it != j.end() && it->is_array() && !it->empty())
    for (const json& p : *it) call_plans.push_back(&p);
  else if (auto o = j.find("options"); o != j.end() && o->is_object())
    call_plans.push_back(&*o);
  for (const json* p : call_plans) {
    try {
      std::vector<PlannedGroup> groups = plan_of(*p);
      r.plan.insert(r.plan.end(), groups.begin(), groups.end());
    } catch (const std::exception& e) {  // json type errors and refused names alike
      r.plan_error = std::string("run.json options: ") + e.what();
    }
  }
  if (auto it = j.find("tasks"); it != j.end() && it->is_array())
    for (const json& t : *it) {
      TaskRecord task;
      task.id = static_cast<int>(int_of(t, "id"));
      task.name = text_of(t, "name");
      task.status = text_of(t, "status");
      task.ok = int_of(t, "ok");
      task.failed = int_of(t, "failed");
      task.skipped = int_of(t, "skipped");
      task.wall_s = number_of(t, "wall_s");
      task.gpu_s = number_of(t, "gpu_s");
      task.note = text_of(t, "note");
      if (auto o = t.find("outputs"); o != t.end() && o->is_array())
        for (const json& p : *o)
          if (p.is_string()) task.outputs.push_back(p.get<std::string>());
      r.tasks.push_back(std::move(task));
    }
  if (auto it = j.find("notes"); it != j.end() && it->is_array())
    for (const json& n : *it)
      if (n.is_string()) r.notes.push_back(n.get<std::string>());
  return r;
}

KernelBenchFile parse_kernel_bench(const json& j, const fs::path& rel) {
  KernelBenchFile k;
  k.file = rel;
  k.model = text_of(j, "model");
  k.dtype = text_of(j, "dtype");
  k.backend = text_of(j, "backend");
  k.device = text_of(j, "device");
  k.epilogue = text_of(j, "epilogue_requested");
  k.timestamp = text_of(j, "timestamp");
  if (auto it = j.find("rows"); it != j.end() && it->is_array())
    for (const json& row : *it) {
      if (text_of(row, "linear") != "sum" || row.contains("skipped")) continue;
      const std::string variant = text_of(row, "variant");
      if (variant == "dense") continue;  // the baseline itself
      k.sums.push_back(KernelSum{int_of(row, "m"), variant, number_of(row, "gemm_ms"),
                                 number_of(row, "layer_ms"), number_of(row, "speedup_gemm"),
                                 number_of(row, "speedup_layer")});
    }
  return k;
}

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  SS_REQUIRE(in, "cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

// Entries of a tuning table: its "gemm" and "kernels" arrays.
void read_tuning_table(TuningTableInfo& t) {
  std::error_code ec;
  t.bytes = fs::file_size(t.resolved, ec);
  try {
    const json j = read_json(t.resolved);
    for (const char* key : {"gemm", "kernels"})
      if (auto it = j.find(key); it != j.end() && it->is_array())
        t.entries += static_cast<int64_t>(it->size());
  } catch (const std::exception& e) {
    t.error = e.what();
  }
}

std::vector<TuningTableInfo> tuning_tables_of(const RunRecord& run, const fs::path& dir) {
  std::vector<TuningTableInfo> out;
  std::vector<fs::path> roots = {dir, dir.parent_path(), fs::current_path()};
  for (const TaskRecord& task : run.tasks)
    for (const std::string& p : task.outputs) {
      if (p.find("tuning") == std::string::npos) continue;
      std::error_code ec;
      fs::path found;
      const fs::path given(p);
      if (given.is_absolute()) {
        if (fs::exists(given, ec)) found = given;
      } else {
        for (const fs::path& root : roots)
          if (fs::exists(root / given, ec)) {
            found = root / given;
            break;
          }
      }
      auto add = [&](const fs::path& file, const std::string& shown) {
        // One row per file: a table two tasks wrote is counted once.
        for (TuningTableInfo& seen : out)
          if (seen.path == shown) {
            if (std::find(seen.tasks.begin(), seen.tasks.end(), task.id) == seen.tasks.end())
              seen.tasks.push_back(task.id);
            return;
          }
        TuningTableInfo t;
        t.path = shown;
        t.tasks = {task.id};
        t.resolved = file;
        t.found = !file.empty();
        if (t.found) read_tuning_table(t);
        out.push_back(std::move(t));
      };
      if (!found.empty() && fs::is_directory(found, ec)) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(found, ec))
          if (e.path().extension() == ".json") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const fs::path& f : files) add(f, (given / f.filename()).generic_string());
      } else {
        add(found, p);
      }
    }
  return out;
}

}  // namespace

int stage_rank(const std::string& stage) {
  if (stage == "prefill") return 0;
  if (stage == "decode") return 1;
  if (stage == "simple-prefill" || stage == "simple") return 2;
  if (stage == "simple-decode") return 3;
  return 4;
}

int variant_rank(const std::string& variant) {
  if (variant == "cublaslt") return 0;
  if (variant == "cublaslt-fa") return 1;
  try {
    return 10 + Sparsity::parse(variant).block();
  } catch (const Error&) {
    return 100000;
  }
}

ResultsModel load_results(const fs::path& dir) {
  std::error_code ec;
  SS_REQUIRE(fs::is_directory(dir, ec), "report: results folder " << dir << " does not exist");
  ResultsModel model;
  model.dir = dir;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(it->path());
  SS_REQUIRE(!ec, "report: cannot list " << dir << ": " << ec.message());
  std::sort(files.begin(), files.end());

  std::vector<CaseResult> all_cases;
  std::map<std::string, InventoryFolder> folders;
  for (const fs::path& path : files) {
    const fs::path rel = fs::relative(path, dir, ec);
    // The report's own outputs, when written into the results folder, are not results.
    const std::string rel_text = rel.generic_string();
    if (rel_text == "report.md" || rel_text == "report.html" || rel_text.starts_with("charts/"))
      continue;
    fs::path folder = rel.parent_path();
    if (folder.filename() == "json") folder = folder.parent_path();
    const std::string folder_name = folder.empty() ? "." : folder.generic_string();
    InventoryFolder& inv = folders[folder_name];
    inv.folder = folder_name;
    inv.bytes += fs::file_size(path, ec);
    const std::string ext = path.extension().string();
    if (ext == ".csv") {
      ++inv.csvs;
      continue;
    }
    if (ext != ".json") {
      ++inv.others;
      inv.other_names.push_back(rel.filename().string());
      continue;
    }
    try {
      const json j = read_json(path);
      const std::string schema = text_of(j, "schema");
      if (schema == "slidesparse.case/1" && path.string().ends_with(".rerun.json")) {
        ++inv.others;
        inv.other_names.push_back(rel.filename().string());
        RerunRecord rerun{rel.generic_string(), text_of(j, "status"), {}, {}};
        if (auto it = j.find("error"); it != j.end() && it->is_object()) {
          rerun.error_type = text_of(*it, "type");
          rerun.message = text_of(*it, "message");
        }
        model.reruns.push_back(std::move(rerun));
        continue;
      }
      if (schema == "slidesparse.case/1") {
        all_cases.push_back(parse_case(j, rel));
        ++inv.case_jsons;
        continue;
      }
      ++inv.others;
      inv.other_names.push_back(rel.filename().string());
      if (schema == "slidesparse.run/1")
        model.run = parse_run(j);
      else if (text_of(j, "benchmark") == "kernel")
        model.kernel_benches.push_back(parse_kernel_bench(j, rel));
    } catch (const std::exception& e) {
      ++inv.others;
      inv.other_names.push_back(rel.filename().string());
      model.unreadable.push_back({rel.generic_string(), e.what()});
    }
  }
  for (auto& [name, inv] : folders) model.inventory.push_back(std::move(inv));

  // One hardware key per report: the run's, else the most common one.
  std::map<std::string, int64_t> per_key;
  for (const CaseResult& c : all_cases) ++per_key[c.hardware_key];
  if (model.run && !model.run->hardware_key.empty()) {
    model.hardware_key = model.run->hardware_key;
  } else {
    int64_t best = -1;
    for (const auto& [key, n] : per_key)
      if (n > best) {
        best = n;
        model.hardware_key = key;
      }
  }
  for (const auto& [key, n] : per_key)
    if (key != model.hardware_key) model.other_hardware.emplace_back(key, n);
  for (CaseResult& c : all_cases)
    if (c.hardware_key == model.hardware_key) model.cases.push_back(std::move(c));
  std::sort(model.cases.begin(), model.cases.end(), [](const CaseResult& a, const CaseResult& b) {
    const auto key = [](const CaseResult& c) {
      return std::make_tuple(stage_rank(c.stage), c.stage, c.dtype, c.model,
                             variant_rank(c.variant()), c.variant(), c.m);
    };
    return key(a) < key(b);
  });
  if (model.run) model.tuning_tables = tuning_tables_of(*model.run, dir);
  return model;
}

}  // namespace slidesparse::report
