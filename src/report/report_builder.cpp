// The report's document: shared labels, the run sections (summary, hardware, tasks, tuning, pass
// counts, failures, missing cases, notes, inventory) and the order of all sections.
#include "report/report_builder.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <set>

#include "report/number_format.h"
#include "report/report_sections.h"

namespace slidesparse::report {
namespace {

TableCell cell(std::string text, std::string state = {}) {
  return TableCell{std::move(text), false, std::move(state)};
}
TableCell code_cell(std::string text) { return TableCell{std::move(text), true, {}}; }

std::string task_status_label(const Strings& s, const std::string& status) {
  if (status == "skipped") return s.task_skipped;
  if (status == "succeeded") return s.task_succeeded;
  if (status == "partly_failed") return s.task_partly_failed;
  if (status == "failed") return s.task_failed;
  if (status == "not_run") return s.task_not_run;
  return status;
}

std::string task_status_state(const std::string& status) {
  if (status == "succeeded") return "ok";
  if (status == "partly_failed" || status == "failed") return "failed";
  if (status == "skipped") return "skipped";
  return "missing";
}

std::string cases_state(const PassCount& c) {
  if (c.failed > 0) return "failed";
  if (c.missing > 0) return "missing";
  if (c.ok == 0 && c.skipped > 0) return "skipped";
  return "ok";
}

std::string pass_cell_text(const Strings& s, const PassCount& c) {
  std::string text = std::to_string(c.ok) + "/" + std::to_string(c.expected());
  std::vector<std::string> extra;
  if (c.failed) extra.push_back(fill(s.cell_failed, {std::to_string(c.failed)}));
  if (c.skipped) extra.push_back(fill(s.cell_skipped, {std::to_string(c.skipped)}));
  if (c.missing) extra.push_back(fill(s.cell_missing, {std::to_string(c.missing)}));
  if (!extra.empty()) text += " (" + join(extra, ", ") + ")";
  return text;
}

double total_wall_s(const ReportContext& ctx) {
  double sum = 0;
  if (ctx.results.run) {
    for (const auto& t : ctx.results.run->tasks) sum += t.wall_s;
  } else {
    for (const auto& c : ctx.results.cases) sum += c.wall_s;
  }
  return sum;
}

double total_gpu_s(const ReportContext& ctx) {
  double sum = 0;
  if (ctx.results.run)
    for (const auto& t : ctx.results.run->tasks) sum += t.gpu_s;
  return sum;
}

GpuRecord gpu_of(const ReportContext& ctx) {
  if (ctx.results.run && !ctx.results.run->gpu.name.empty()) return ctx.results.run->gpu;
  for (const auto& c : ctx.results.cases)
    if (!c.gpu.name.empty()) return c.gpu;
  return {};
}

}  // namespace

ReportContext::ReportContext(const ResultsModel& r, const Strings& strings)
    : results(r),
      s(strings),
      index(r.cases),
      matrices(stage_matrices(r.cases, r.run ? r.run->plan : std::vector<PlannedGroup>{})) {
  for (const StageMatrix& m : matrices) {
    auto missing_here = missing_cases(m, index);
    missing.insert(missing.end(), missing_here.begin(), missing_here.end());
  }
  if (r.run)
    for (const TaskRecord& t : r.run->tasks)
      if (t.status == "not_run" || t.status.empty())
        unfinished_tasks.push_back(std::to_string(t.id) + " " + t.name);
  std::map<std::string, int64_t> counts;
  for (const CaseResult& c : r.cases) ++counts[c.build];
  builds.assign(counts.begin(), counts.end());
  std::stable_sort(builds.begin(), builds.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
}

std::string stage_label(const Strings& s, const std::string& stage) {
  if (stage == "prefill") return s.stage_prefill;
  if (stage == "decode") return s.stage_decode;
  if (stage == "simple") return s.stage_simple;
  if (stage == "simple-prefill") return std::string(s.stage_simple) + " · prefill";
  if (stage == "simple-decode") return std::string(s.stage_simple) + " · decode";
  return stage;
}

std::string dtype_label(const std::string& dtype) {
  std::string out = dtype;
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string variant_label(const std::string& variant) {
  if (variant == "cublaslt") return "cuBLASLt";
  if (variant == "cublaslt-fa") return "cuBLASLt FA";
  return variant;
}

std::string variant_long_label(const std::string& variant) {
  if (is_dense(variant) || variant_rank(variant) >= 100000) return variant_label(variant);
  return "cuSPARSELt " + variant;
}

std::string state_label(const Strings& s, CaseStatus status) {
  switch (status) {
    case CaseStatus::kOk:
      return s.state_ok;
    case CaseStatus::kFailed:
      return s.state_failed;
    case CaseStatus::kSkipped:
      return s.state_skipped;
  }
  return {};
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string slug(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

TableCell state_cell(const Strings& s, const CaseResult* c) {
  if (c == nullptr) return cell(s.state_missing, "missing");
  if (c->status == CaseStatus::kFailed) return cell(s.state_failed, "failed");
  if (c->status == CaseStatus::kSkipped) return cell(s.state_skipped, "skipped");
  return cell(kDash);
}

std::vector<std::string> patterns_of(const StageMatrix& m) {
  std::vector<std::string> out;
  for (const auto& v : m.variants)
    if (!is_dense(v) && variant_rank(v) < 100000) out.push_back(v);
  return out;
}

// The numbers a reader looks for first: per stage, precision and model, each pattern's end-to-end
// speed-up over the faster dense baseline at one M (the largest up to 16384: the seed's prefill
// target point, decode's largest batch), the bound as the last row.
void add_headline_table(const ReportContext& ctx, Section& sec) {
  const Strings& s = ctx.s;
  std::vector<std::string> patterns;
  for (const StageMatrix& m : ctx.matrices)
    for (const auto& v : patterns_of(m))
      if (std::find(patterns.begin(), patterns.end(), v) == patterns.end()) patterns.push_back(v);
  std::sort(patterns.begin(), patterns.end(), [](const std::string& a, const std::string& b) {
    return variant_rank(a) < variant_rank(b);
  });
  if (patterns.empty()) return;
  Table t{"table-headline",
          s.headline_caption,
          {s.col_stage_m, s.col_dtype, s.col_model, s.col_baseline},
          {false, false, false, false},
          {}};
  for (const auto& p : patterns) {
    t.header.push_back(p);
    t.numeric.push_back(true);
  }
  for (const StageMatrix& m : ctx.matrices) {
    if (m.ms.empty()) continue;
    int64_t at = m.ms.front();
    for (int64_t x : m.ms)
      if (x <= 16384) at = x;
    for (const auto& dtype : m.dtypes)
      for (const auto& model : m.models) {
        const auto baselines = baselines_faster_first(ctx.index, m, dtype, model);
        if (baselines.empty()) continue;
        std::vector<TableCell> row{cell(stage_label(s, m.stage) + " · " + std::to_string(at)),
                                   cell(dtype_label(dtype)), cell(model),
                                   cell(variant_label(baselines[0]))};
        bool any = false;
        for (const auto& p : patterns) {
          if (auto v = speedup(ctx.index, m.stage, dtype, model, p, baselines[0], at)) {
            row.push_back(cell(format_ratio(*v), *v >= 1.0 ? "ok" : ""));
            any = true;
          } else {
            row.push_back(state_cell(s, ctx.index.find(m.stage, dtype, model, p, at)));
          }
        }
        if (any) t.rows.push_back(std::move(row));
      }
  }
  if (t.rows.empty()) return;
  std::vector<TableCell> bound{cell(s.row_bound), cell(""), cell(""), cell("")};
  for (const auto& p : patterns) bound.push_back(cell(format_ratio(speedup_bound(p))));
  t.rows.push_back(std::move(bound));
  t.last_row_is_total = true;
  sec.blocks.push_back(std::move(t));
}

std::string builds_text(const Strings& s,
                        const std::vector<std::pair<std::string, int64_t>>& builds) {
  std::vector<std::string> parts;
  for (const auto& [build, n] : builds)
    parts.push_back((build.empty() ? std::string(s.build_not_recorded) : build) + ": " +
                    fill(s.build_cases, {format_count(n)}));
  return join(parts, "; ");
}

void add_overview(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"overview", 2, s.sec_overview, {}};
  sec.blocks.push_back(Paragraph{fill(s.generated_from, {ctx.results.dir.generic_string()})});
  std::vector<std::string> partial;
  if (!ctx.results.run) partial.push_back(s.partial_no_run_json);
  // prepare-bench writes the report before it stamps the finish time: a missing finish time
  // alone is no sign of a partial run.
  if (ctx.results.run && ctx.results.run->finished_at.empty() && ctx.incomplete())
    partial.push_back(s.partial_unfinished);
  if (!ctx.unfinished_tasks.empty())
    partial.push_back(fill(s.partial_tasks_not_run, {join(ctx.unfinished_tasks, ", ")}));
  if (!ctx.missing.empty())
    partial.push_back(fill(s.partial_missing_cases, {std::to_string(ctx.missing.size())}));
  if (!partial.empty())
    sec.blocks.push_back(Paragraph{fill(s.partial_banner, {join(partial, "; ")}), true});
  if (ctx.builds.size() > 1)
    sec.blocks.push_back(Paragraph{
        fill(s.mixed_builds, {std::to_string(ctx.builds.size()), builds_text(s, ctx.builds)}),
        true});
  int64_t ok = 0, failed = 0, skipped = 0;
  for (const auto& c : ctx.results.cases) {
    ok += c.status == CaseStatus::kOk;
    failed += c.status == CaseStatus::kFailed;
    skipped += c.status == CaseStatus::kSkipped;
  }
  std::vector<std::string> items;
  items.push_back(
      fill(s.summary_cases, {format_count(static_cast<int64_t>(ctx.results.cases.size())),
                             format_count(ok), format_count(failed), format_count(skipped),
                             format_count(static_cast<int64_t>(ctx.missing.size()))}));
  items.push_back(
      fill(s.summary_time, {format_seconds(total_wall_s(ctx)),
                            ctx.results.run ? format_seconds(total_gpu_s(ctx)) : kDash}));
  // The best end-to-end speed-up anywhere, over the faster baseline of its table.
  double best = 0;
  std::string where;
  for (const StageMatrix& m : ctx.matrices)
    for (const auto& dtype : m.dtypes)
      for (const auto& model : m.models) {
        const auto baselines = baselines_faster_first(ctx.index, m, dtype, model);
        if (baselines.empty()) continue;
        for (const auto& v : m.variants) {
          if (is_dense(v)) continue;
          for (int64_t mm : m.ms)
            if (auto sp = speedup(ctx.index, m.stage, dtype, model, v, baselines[0], mm);
                sp && *sp > best) {
              best = *sp;
              where = stage_label(s, m.stage) + " " + model + " " + dtype_label(dtype) + " " + v +
                      " M=" + std::to_string(mm) + " vs " + variant_label(baselines[0]);
            }
        }
      }
  if (best > 0) items.push_back(fill(s.summary_best, {format_ratio(best), where}));
  sec.blocks.push_back(BulletList{items});
  add_headline_table(ctx, sec);
  doc.sections.push_back(std::move(sec));
}

void add_hardware(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"hardware", 2, s.sec_hardware, {}};
  Table t{"table-hardware", "", {s.col_item, s.col_value}, {false, false}, {}};
  const GpuRecord gpu = gpu_of(ctx);
  t.rows.push_back({cell(s.hw_gpu), cell(gpu.name.empty() ? kDash : gpu.name)});
  t.rows.push_back({cell(s.hw_cc), cell(gpu.cc.empty() ? kDash : gpu.cc)});
  bool driver_in_versions = false;
  if (ctx.results.run)
    for (const auto& [key, value] : ctx.results.run->versions)
      driver_in_versions |= key == "driver";
  if (!driver_in_versions)
    t.rows.push_back({cell(s.hw_driver), cell(gpu.driver.empty() ? kDash : gpu.driver)});
  if (ctx.results.run) {
    // JSON objects come back with sorted keys: put the versions in the order a reader expects.
    auto versions = ctx.results.run->versions;
    const auto rank = [](const std::string& key) {
      static const char* order[] = {"cuda",     "cuda_runtime", "cuda_driver_api",
                                    "cublaslt", "cusparselt",   "driver"};
      for (size_t i = 0; i < std::size(order); ++i)
        if (key == order[i]) return static_cast<int>(i);
      return static_cast<int>(std::size(order));
    };
    std::stable_sort(versions.begin(), versions.end(),
                     [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
    for (const auto& [key, value] : versions) {
      std::string name = key;
      if (key == "cuda") name = "CUDA";
      if (key == "cublaslt") name = "cuBLASLt";
      if (key == "cusparselt") name = "cuSPARSELt";
      if (key == "cuda_runtime") name = "CUDA runtime";
      if (key == "cuda_driver_api") name = "CUDA driver API";
      if (key == "driver") name = s.hw_driver;
      t.rows.push_back({cell(name), cell(format_library_version(key, value))});
    }
  }
  t.rows.push_back(
      {cell(s.hw_key),
       code_cell(ctx.results.hardware_key.empty() ? kDash : ctx.results.hardware_key)});
  if (!ctx.builds.empty())
    t.rows.push_back({cell(s.hw_build),
                      cell(builds_text(s, ctx.builds), ctx.builds.size() > 1 ? "missing" : "")});
  if (ctx.results.run) {
    const RunRecord& run = *ctx.results.run;
    t.rows.push_back({cell(s.hw_started), cell(run.started_at.empty() ? kDash : run.started_at)});
    t.rows.push_back({cell(s.hw_finished),
                      run.finished_at.empty()
                          ? (ctx.incomplete() ? cell(s.hw_unfinished, "missing") : cell(kDash))
                          : cell(run.finished_at)});
  }
  t.rows.push_back({cell(s.hw_wall), cell(format_seconds(total_wall_s(ctx)))});
  t.rows.push_back(
      {cell(s.hw_gpu_time), cell(ctx.results.run ? format_seconds(total_gpu_s(ctx)) : kDash)});
  sec.blocks.push_back(std::move(t));
  if (!ctx.results.other_hardware.empty()) {
    std::vector<std::string> others;
    for (const auto& [key, n] : ctx.results.other_hardware)
      others.push_back((key.empty() ? "?" : key) + " (" + std::to_string(n) + ")");
    sec.blocks.push_back(Paragraph{fill(s.hw_other_keys, {join(others, ", ")})});
  }
  doc.sections.push_back(std::move(sec));
}

void add_tasks(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"tasks", 2, s.sec_tasks, {}};
  if (!ctx.results.run) {
    sec.blocks.push_back(Paragraph{s.no_run_json, true});
    doc.sections.push_back(std::move(sec));
    return;
  }
  Table t{"table-tasks",
          "",
          {"#", s.col_task, s.col_status, s.col_ok, s.col_failed, s.col_skipped, s.col_wall,
           s.col_gpu_time, s.col_note},
          {true, false, false, true, true, true, true, true, false},
          {},
          true};
  int64_t ok = 0, failed = 0, skipped = 0;
  for (const TaskRecord& task : ctx.results.run->tasks) {
    t.rows.push_back({cell(std::to_string(task.id)), cell(task.name),
                      cell(task_status_label(s, task.status), task_status_state(task.status)),
                      cell(format_count(task.ok)), cell(format_count(task.failed)),
                      cell(format_count(task.skipped)), cell(format_seconds(task.wall_s)),
                      cell(format_seconds(task.gpu_s)),
                      cell(task.note.empty() ? kDash : task.note)});
    ok += task.ok;
    failed += task.failed;
    skipped += task.skipped;
  }
  t.rows.push_back({cell(""), cell(s.total), cell(""), cell(format_count(ok)),
                    cell(format_count(failed)), cell(format_count(skipped)),
                    cell(format_seconds(total_wall_s(ctx))), cell(format_seconds(total_gpu_s(ctx))),
                    cell("")});
  sec.blocks.push_back(std::move(t));
  doc.sections.push_back(std::move(sec));
}

void add_tuning(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"tuning", 2, s.sec_tuning, {}};
  if (ctx.results.tuning_tables.empty()) {
    sec.blocks.push_back(Paragraph{s.tuning_none});
    doc.sections.push_back(std::move(sec));
    return;
  }
  Table t{"table-tuning",
          "",
          {s.col_path, s.col_task, s.col_entries, s.col_size},
          {false, true, true, true},
          {},
          true};
  int64_t entries = 0;
  uint64_t bytes = 0;
  for (const TuningTableInfo& tt : ctx.results.tuning_tables) {
    std::vector<std::string> task_ids;
    for (int id : tt.tasks) task_ids.push_back(std::to_string(id));
    const std::string tasks = join(task_ids, ", ");
    if (tt.found) {
      t.rows.push_back({code_cell(tt.path), cell(tasks),
                        cell(tt.error.empty() ? format_count(tt.entries) : kDash,
                             tt.error.empty() ? "" : "failed"),
                        cell(format_bytes(tt.bytes))});
      entries += tt.entries;
      bytes += tt.bytes;
    } else {
      t.rows.push_back(
          {code_cell(tt.path), cell(tasks), cell(kDash), cell(s.tuning_not_found, "missing")});
    }
  }
  t.rows.push_back(
      {cell(s.total), cell(""), cell(format_count(entries)), cell(format_bytes(bytes))});
  sec.blocks.push_back(std::move(t));
  doc.sections.push_back(std::move(sec));
}

void add_stage_passes(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  for (const StageMatrix& m : ctx.matrices) {
    const std::string stage = stage_label(s, m.stage);
    Section sec{"stage-" + slug(m.stage), 2, fill(s.sec_stage, {stage}), {}};
    std::vector<std::string> dtypes, backends, ms;
    for (const auto& d : m.dtypes) dtypes.push_back(dtype_label(d));
    for (const auto& v : m.variants) backends.push_back(variant_long_label(v));
    for (int64_t x : m.ms) ms.push_back(std::to_string(x));
    std::set<int64_t> warmups, repeats, prompts, outputs;
    for (const auto& c : ctx.results.cases)
      if (c.stage == m.stage && c.metrics) {
        warmups.insert(c.metrics->warmup);
        repeats.insert(c.metrics->repeats);
        prompts.insert(c.metrics->prompt_len);
        outputs.insert(c.metrics->output_len);
      }
    // Up to four values listed; more (timed repetitions grow to fill --min-time) as a range.
    auto list = [](const std::set<int64_t>& v) {
      if (v.size() > 4) return std::to_string(*v.begin()) + "–" + std::to_string(*v.rbegin());
      std::vector<std::string> out;
      for (int64_t x : v) out.push_back(std::to_string(x));
      return out.empty() ? std::string(kDash) : join(out, ", ");
    };
    sec.blocks.push_back(BulletList{
        {fill(s.cfg_dtypes, {join(dtypes, ", ")}), fill(s.cfg_models, {join(m.models, ", ")}),
         fill(s.cfg_backends, {join(backends, ", ")}), fill(s.cfg_ms, {join(ms, ", ")}),
         fill(s.cfg_shapes, {list(prompts), list(outputs)}),
         fill(s.cfg_timing, {list(warmups), list(repeats)})}});
    Table t{"table-passes-" + slug(m.stage),
            fill(s.passes_caption, {stage}),
            {s.col_backend},
            {false},
            {},
            true};
    for (const auto& model : m.models) {
      t.header.push_back(model);
      t.numeric.push_back(true);
    }
    t.header.push_back(s.total);
    t.numeric.push_back(true);
    std::vector<PassCount> column_totals(m.models.size() + 1);
    for (const auto& dtype : m.dtypes)
      for (const auto& v : m.variants) {
        std::vector<TableCell> row{cell(dtype_label(dtype) + " · " + variant_long_label(v))};
        PassCount row_total;
        for (size_t i = 0; i < m.models.size(); ++i) {
          const PassCount c = count_cases(m, ctx.index, dtype, v, m.models[i]);
          row.push_back(cell(pass_cell_text(s, c), cases_state(c)));
          row_total += c;
          column_totals[i] += c;
        }
        column_totals.back() += row_total;
        row.push_back(cell(pass_cell_text(s, row_total), cases_state(row_total)));
        t.rows.push_back(std::move(row));
      }
    std::vector<TableCell> total_row{cell(s.total)};
    for (const PassCount& c : column_totals)
      total_row.push_back(cell(pass_cell_text(s, c), cases_state(c)));
    t.rows.push_back(std::move(total_row));
    sec.blocks.push_back(std::move(t));

    GridChart g;
    g.id = "chart-grid-" + slug(m.stage);
    g.title = fill(s.grid_title, {stage});
    g.x_label = s.grid_x;
    g.column_groups = m.models;
    for (size_t i = 0; i < m.models.size(); ++i) g.column_ms.emplace_back(m.ms.begin(), m.ms.end());
    for (const auto& dtype : m.dtypes)
      for (const auto& v : m.variants) {
        g.row_labels.push_back(dtype_label(dtype) + " " + variant_label(v));
        g.row_keys.push_back(dtype + " " + v);
        std::vector<std::string> row;
        for (const auto& model : m.models)
          for (int64_t x : m.ms) {
            const CaseResult* c = ctx.index.find(m.stage, dtype, model, v, x);
            row.push_back(c == nullptr                       ? "missing"
                          : c->status == CaseStatus::kOk     ? "ok"
                          : c->status == CaseStatus::kFailed ? "failed"
                                                             : "skipped");
          }
        g.states.push_back(std::move(row));
      }
    g.legend_states = {"ok", "failed", "skipped", "missing"};
    g.legend_labels = {s.state_ok, s.state_failed, s.state_skipped, s.state_missing};
    sec.blocks.push_back(std::move(g));
    doc.sections.push_back(std::move(sec));
  }
}

void add_failures(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"failures", 2, s.sec_failures, {}};
  std::vector<const CaseResult*> failed;
  for (const auto& c : ctx.results.cases)
    if (c.status == CaseStatus::kFailed) failed.push_back(&c);
  if (failed.empty()) {
    sec.blocks.push_back(Paragraph{s.failures_none});
    doc.sections.push_back(std::move(sec));
    return;
  }
  sec.blocks.push_back(Paragraph{fill(s.failures_count, {std::to_string(failed.size())})});
  Table t{"table-failures",
          "",
          {"#", s.col_stage, s.col_dtype, s.col_model, "M", s.col_backend, s.col_pattern,
           s.col_error, s.col_message, s.col_command},
          {true, false, false, false, true, false, false, false, false, false},
          {}};
  std::string commands;
  for (size_t i = 0; i < failed.size(); ++i) {
    const CaseResult& c = *failed[i];
    t.rows.push_back({cell(std::to_string(i + 1)), cell(stage_label(s, c.stage)),
                      cell(dtype_label(c.dtype)), cell(c.model), cell(std::to_string(c.m)),
                      cell(c.backend), cell(c.sparsity.empty() ? kDash : c.sparsity),
                      cell(c.error ? c.error->type : "?", "failed"),
                      cell(c.error && !c.error->message.empty() ? c.error->message : kDash),
                      code_cell(c.command.empty() ? kDash : c.command)});
    if (!c.command.empty()) commands += c.command + "\n";
  }
  sec.blocks.push_back(std::move(t));
  if (!commands.empty()) {
    sec.blocks.push_back(Paragraph{s.failures_rerun});
    sec.blocks.push_back(CodeBlock{commands});
  }
  doc.sections.push_back(std::move(sec));
}

void add_missing(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"missing", 2, s.sec_missing, {}};
  if (!ctx.unfinished_tasks.empty())
    sec.blocks.push_back(
        Paragraph{fill(s.tasks_not_run, {join(ctx.unfinished_tasks, ", ")}), true});
  if (ctx.missing.empty()) {
    sec.blocks.push_back(Paragraph{s.missing_none});
    doc.sections.push_back(std::move(sec));
    return;
  }
  sec.blocks.push_back(Paragraph{fill(s.missing_intro, {std::to_string(ctx.missing.size())})});
  Table t{"table-missing",
          "",
          {s.col_stage, s.col_dtype, s.col_model, s.col_backend, s.col_missing_ms},
          {false, false, false, false, true},
          {}};
  // One row per (stage, dtype, model, variant) with its missing Ms.
  for (size_t i = 0; i < ctx.missing.size();) {
    const MissingCase& first = ctx.missing[i];
    std::vector<std::string> ms;
    size_t j = i;
    for (; j < ctx.missing.size(); ++j) {
      const MissingCase& c = ctx.missing[j];
      if (c.stage != first.stage || c.dtype != first.dtype || c.model != first.model ||
          c.variant != first.variant)
        break;
      ms.push_back(std::to_string(c.m));
    }
    t.rows.push_back({cell(stage_label(s, first.stage)), cell(dtype_label(first.dtype)),
                      cell(first.model), cell(variant_long_label(first.variant)),
                      cell(join(ms, ", "), "missing")});
    i = j;
  }
  sec.blocks.push_back(std::move(t));
  doc.sections.push_back(std::move(sec));
}

void add_notes(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"notes", 2, s.sec_notes, {}};
  std::vector<std::string> items;
  if (ctx.results.run) items = ctx.results.run->notes;
  std::map<std::string, int64_t> skip_reasons;
  for (const auto& c : ctx.results.cases)
    if (c.status == CaseStatus::kSkipped)
      ++skip_reasons[c.skip_reason.empty() ? "?" : c.skip_reason];
  for (const auto& [reason, n] : skip_reasons)
    items.push_back(fill(s.note_skipped, {std::to_string(n), reason}));
  for (const auto& r : ctx.results.reruns)
    items.push_back(fill(s.note_rerun, {r.file, r.error_type.empty() ? r.status : r.error_type,
                                        r.message.empty() ? kDash : r.message}));
  for (const auto& u : ctx.results.unreadable)
    items.push_back(fill(s.note_unreadable, {u.file, u.error}));
  // Without the plan, cases the run never reached cannot be counted missing: say so.
  if (ctx.results.run && !ctx.results.run->plan_error.empty())
    items.push_back(fill(s.note_unreadable, {"run.json", ctx.results.run->plan_error}));
  if (items.empty())
    sec.blocks.push_back(Paragraph{s.notes_none});
  else
    sec.blocks.push_back(BulletList{items});
  doc.sections.push_back(std::move(sec));
}

void add_inventory(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"inventory", 2, s.sec_inventory, {}};
  sec.blocks.push_back(Paragraph{fill(s.inventory_intro, {ctx.results.dir.generic_string()})});
  Table t{"table-inventory",
          "",
          {s.col_folder, s.col_case_jsons, s.col_csvs, s.col_others, s.col_size},
          {false, true, true, false, true},
          {},
          true};
  int64_t jsons = 0, csvs = 0, others = 0;
  uint64_t bytes = 0;
  for (const InventoryFolder& f : ctx.results.inventory) {
    std::string other = f.others == 0 ? "0" : std::to_string(f.others);
    if (!f.other_names.empty()) {
      std::vector<std::string> names(
          f.other_names.begin(), f.other_names.begin() + std::min<size_t>(f.other_names.size(), 4));
      other += ": " + join(names, ", ") + (f.other_names.size() > 4 ? ", …" : "");
    }
    t.rows.push_back({code_cell(f.folder), cell(format_count(f.case_jsons)),
                      cell(format_count(f.csvs)), cell(other), cell(format_bytes(f.bytes))});
    jsons += f.case_jsons;
    csvs += f.csvs;
    others += f.others;
    bytes += f.bytes;
  }
  t.rows.push_back({cell(s.total), cell(format_count(jsons)), cell(format_count(csvs)),
                    cell(format_count(others)), cell(format_bytes(bytes))});
  sec.blocks.push_back(std::move(t));
  doc.sections.push_back(std::move(sec));
}

Document build_report(const ResultsModel& results, Lang lang) {
  const Strings& s = strings(lang);
  const ReportContext ctx(results, s);
  Document doc;
  doc.lang = lang_code(lang);
  doc.contents_label = s.contents;
  const GpuRecord gpu = gpu_of(ctx);
  doc.title = std::string(s.title) + (gpu.name.empty() ? "" : " — " + gpu.name);
  doc.subtitle = results.hardware_key;
  add_overview(ctx, doc);
  add_hardware(ctx, doc);
  add_tasks(ctx, doc);
  add_tuning(ctx, doc);
  add_stage_passes(ctx, doc);
  add_failures(ctx, doc);
  add_missing(ctx, doc);
  add_notes(ctx, doc);
  add_performance(ctx, doc);
  add_energy(ctx, doc);
  add_kernel(ctx, doc);
  add_inventory(ctx, doc);
  return doc;
}

}  // namespace slidesparse::report
