// Case JSONs and the CSVs rebuilt from them (see case_store.h).
#include "pipeline/case_store.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>
#include <tuple>

#include "io/safetensors.h"
#include "slidesparse/build_info.h"
#include "slidesparse/error.h"

namespace slidesparse::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// A CSV field: quoted when it holds a separator, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_value(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (it->is_string()) return csv_field(it->get<std::string>());
  return it->dump();  // numbers as nlohmann writes them (round-trip exact)
}

}  // namespace

std::string utc_now_text() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

StoredCase read_case(const fs::path& file) {
  StoredCase c;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return c;
  c.exists = true;
  try {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot open");
    std::stringstream text;
    text << in.rdbuf();
    json doc = json::parse(text.str());
    if (!doc.is_object() || string_field(doc, "schema") != kCaseSchema)
      throw Error(std::string("not a ") + kCaseSchema + " document");
    c.status = string_field(doc, "status");
    if (c.status != "ok" && c.status != "failed" && c.status != "skipped")
      throw Error("unknown status '" + c.status + "'");
    c.hardware_key = string_field(doc, "hardware_key");
    c.build = string_field(doc, "build");
    if (auto it = doc.find("error"); it != doc.end() && it->is_object()) {
      c.error_type = string_field(*it, "type");
      c.reason = string_field(*it, "message");
    }
    if (c.status == "skipped") c.reason = string_field(doc, "skip_reason");
    c.doc = std::move(doc);
    c.readable = true;
  } catch (const std::exception& e) {
    c.problem = e.what();
  }
  return c;
}

fs::path rerun_path(const fs::path& case_file) {
  fs::path out = case_file;
  out.replace_extension(".rerun.json");
  return out;
}

fs::path store_case(const fs::path& json_dir, const std::string& file_name, const json& doc) {
  std::error_code ec;
  fs::create_directories(json_dir, ec);
  SS_REQUIRE(!ec, "cannot create " << json_dir << ": " << ec.message());
  const fs::path main = json_dir / file_name;
  const std::string text = doc.dump(1) + "\n";
  const bool ok = string_field(doc, "status") == "ok";
  const StoredCase existing = read_case(main);
  if (!ok && existing.readable && existing.status == "ok") {
    const fs::path rerun = rerun_path(main);
    write_file_atomic(rerun, text);
    return rerun;
  }
  write_file_atomic(main, text);
  if (ok) fs::remove(rerun_path(main), ec);  // the case passes now; the old failure is history
  return main;
}

json make_case_json(const CaseRecord& r, const RunHardware& hw) {
  SS_REQUIRE(r.group != nullptr, "make_case_json: no group");
  const BenchGroup& g = *r.group;
  json doc;
  doc["schema"] = kCaseSchema;
  doc["task"] = g.task;
  doc["stage"] = g.stage;
  if (g.stage == "simple") doc["phase"] = g.phase;
  doc["model"] = g.model;
  doc["dtype"] = g.dtype;
  doc["backend"] = g.backend.backend;
  doc["sparsity"] = g.backend.sparsity ? json(g.backend.sparsity->name()) : json(nullptr);
  doc["M"] = r.m;
  doc["status"] = r.status;
  if (r.status == "failed") {
    json error = {{"type", r.error_type}, {"message", r.message}, {"rerun", r.command}};
    if (r.exit_code) error["exit_code"] = *r.exit_code;
    if (r.signal) error["signal"] = *r.signal;
    doc["error"] = std::move(error);
  } else {
    doc["error"] = nullptr;
  }
  doc["skip_reason"] = r.status == "skipped" ? json(r.skip_reason) : json(nullptr);
  doc["command"] = r.command;
  doc["hardware_key"] = hw.hardware_key;
  doc["build"] = build_info().id();
  doc["gpu"] = {{"name", hw.gpu_name}, {"cc", hw.cc_text()}, {"driver", hw.driver}};
  doc["started_at"] = r.started_at.empty() ? utc_now_text() : r.started_at;
  doc["wall_s"] = r.wall_s;
  doc["metrics"] = nullptr;
  doc["recorded_by"] = "prepare-bench";  // not the benchmark process: it died, or was not needed
  return doc;
}

int rebuild_csv(const fs::path& folder, const std::string& model, bool with_phase) {
  const fs::path json_dir = folder / "json";
  std::error_code ec;
  if (!fs::is_directory(json_dir, ec)) return 0;
  struct Row {
    int phase_rank;
    int64_t m;
    std::string line;
  };
  std::vector<Row> rows;
  for (const auto& entry : fs::directory_iterator(json_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!ends_with(name, ".json") || ends_with(name, ".rerun.json")) continue;
    const StoredCase c = read_case(entry.path());
    if (!c.readable || string_field(c.doc, "model") != model) continue;
    const json& d = c.doc;
    const std::string phase = string_field(d, "phase");
    const int64_t m = d.value("M", int64_t{0});
    const json metrics = d.contains("metrics") ? d["metrics"] : json(nullptr);
    std::ostringstream line;
    line << csv_field(model) << ",";
    if (with_phase) line << csv_field(phase) << ",";
    line << m << "," << c.status;
    for (const char* key : {"tokens_per_s", "output_tokens_per_s", "requests_per_s", "elapsed_s",
                            "step_ms_median", "prompt_len", "batch", "output_len", "warmup",
                            "repeats", "avg_power_w", "energy_j", "joules_per_token"})
      line << "," << csv_value(metrics, key);
    line << "," << csv_field(c.error_type) << "," << csv_field(c.reason);
    rows.push_back({phase == "decode" ? 1 : 0, m, line.str()});
  }
  if (rows.empty()) return 0;
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.phase_rank, a.m) < std::tie(b.phase_rank, b.m);
  });
  std::string text = with_phase ? "model,phase,M,status" : "model,M,status";
  text +=
      ",tokens_per_s,output_tokens_per_s,requests_per_s,elapsed_s,step_ms_median,prompt_len,"
      "batch,output_len,warmup,repeats,avg_power_w,energy_j,joules_per_token,error_type,note\n";
  for (const Row& row : rows) text += row.line + "\n";
  write_file_atomic(folder / (model + ".csv"), text);
  return static_cast<int>(rows.size());
}

}  // namespace slidesparse::pipeline
