// The report's performance sections: throughput and speed-up tables and charts per stage, energy
// per token, and the kernel-level speed-ups of `bench kernel`. Chart points carry the same values
// as the table cells beside them (both read CaseIndex / the kernel sums).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "report/number_format.h"
#include "report/report_sections.h"

namespace slidesparse::report {
namespace {

TableCell cell(std::string text, std::string state = {}) {
  return TableCell{std::move(text), false, std::move(state)};
}

std::string x_label(const Strings& s, const std::string& stage) {
  if (stage.ends_with("prefill")) return s.chart_x_prefill;
  if (stage.ends_with("decode")) return s.chart_x_decode;
  return s.chart_x_other;
}

void add_model_tables(const ReportContext& ctx, const StageMatrix& m, const std::string& dtype,
                      const std::string& model, Section& sec) {
  const Strings& s = ctx.s;
  const std::string stage = stage_label(s, m.stage);
  const std::string dt = dtype_label(dtype);
  const std::string id = slug(m.stage) + "-" + slug(dtype) + "-" + slug(model);

  Table tput{"table-tput-" + id, fill(s.tput_caption, {stage, model, dt}), {"M"}, {true}, {}};
  for (const auto& v : m.variants) {
    tput.header.push_back(variant_label(v));
    tput.numeric.push_back(true);
  }
  LineChart chart;
  chart.id = "chart-tput-" + id;
  chart.title = fill(s.chart_tput_title, {stage, model, dt});
  chart.x_label = x_label(s, m.stage);
  chart.y_label = s.chart_tput_y;
  for (const auto& v : m.variants)
    chart.series.push_back(ChartSeries{variant_label(v), {}, is_dense(v)});
  for (int64_t x : m.ms) {
    std::vector<TableCell> row{cell(std::to_string(x))};
    for (size_t i = 0; i < m.variants.size(); ++i) {
      if (auto t = ctx.index.tokens_per_s(m.stage, dtype, model, m.variants[i], x)) {
        row.push_back(cell(format_rate(*t)));
        chart.series[i].points.push_back({static_cast<double>(x), *t});
      } else {
        row.push_back(state_cell(s, ctx.index.find(m.stage, dtype, model, m.variants[i], x)));
      }
    }
    tput.rows.push_back(std::move(row));
  }
  sec.blocks.push_back(std::move(tput));
  sec.blocks.push_back(std::move(chart));

  const auto baselines = baselines_faster_first(ctx.index, m, dtype, model);
  const auto patterns = patterns_of(m);
  if (baselines.empty() || patterns.empty()) return;
  const std::string caption =
      baselines.size() >= 2
          ? fill(s.speedup_caption,
                 {variant_label(baselines[0]), variant_label(baselines[1]), stage, model, dt})
          : fill(s.speedup_caption_one, {variant_label(baselines[0]), stage, model, dt});
  Table sp{"table-speedup-" + id, caption, {"M"}, {true}, {}};
  for (const auto& p : patterns) {
    sp.header.push_back(p);
    sp.numeric.push_back(true);
  }
  for (int64_t x : m.ms) {
    std::vector<TableCell> row{cell(std::to_string(x))};
    for (const auto& p : patterns) {
      std::vector<std::string> parts;
      bool any = false;
      for (size_t b = 0; b < std::min<size_t>(baselines.size(), 2); ++b) {
        const auto v = speedup(ctx.index, m.stage, dtype, model, p, baselines[b], x);
        parts.push_back(v ? format_ratio(*v) : kDash);
        any = any || v.has_value();
      }
      if (any)
        row.push_back(cell(join(parts, " / ")));
      else
        row.push_back(state_cell(s, ctx.index.find(m.stage, dtype, model, p, x)));
    }
    sp.rows.push_back(std::move(row));
  }
  std::vector<TableCell> bound{cell(s.row_bound)};
  for (const auto& p : patterns) bound.push_back(cell(format_ratio(speedup_bound(p))));
  sp.rows.push_back(std::move(bound));
  sp.last_row_is_total = true;
  sec.blocks.push_back(std::move(sp));
}

void add_speedup_charts(const ReportContext& ctx, const StageMatrix& m, const std::string& dtype,
                        Document& doc) {
  const Strings& s = ctx.s;
  const std::string stage = stage_label(s, m.stage);
  Section sec{"perf-" + slug(m.stage) + "-" + slug(dtype) + "-speedup",
              3,
              fill(s.sec_speedup_charts, {stage, dtype_label(dtype)}),
              {}};
  for (const auto& p : patterns_of(m)) {
    LineChart chart;
    chart.id = "chart-speedup-" + slug(m.stage) + "-" + slug(dtype) + "-" + slug(p);
    chart.title = fill(s.chart_speedup_title, {stage, dtype_label(dtype), p});
    chart.x_label = x_label(s, m.stage);
    chart.y_label = s.chart_speedup_y;
    chart.y_from_zero = false;
    bool any = false;
    for (const auto& model : m.models) {
      const auto baselines = baselines_faster_first(ctx.index, m, dtype, model);
      if (baselines.empty()) continue;
      ChartSeries series{model + " (vs " + variant_label(baselines[0]) + ")", {}, false};
      for (int64_t x : m.ms)
        if (auto v = speedup(ctx.index, m.stage, dtype, model, p, baselines[0], x))
          series.points.push_back({static_cast<double>(x), *v});
      any = any || !series.points.empty();
      chart.series.push_back(std::move(series));
    }
    if (!any) continue;
    chart.references.push_back(
        {speedup_bound(p), fill(s.ref_bound, {format_ratio(speedup_bound(p))})});
    chart.references.push_back({1.0, s.ref_dense});
    sec.blocks.push_back(std::move(chart));
  }
  if (!sec.blocks.empty()) doc.sections.push_back(std::move(sec));
}

// How much of the kernel-level GEMM speed-up the whole model keeps in prefill at the same M.
void add_kernel_vs_prefill(const ReportContext& ctx, const KernelBenchFile& k,
                           const std::vector<std::string>& variants, const std::vector<int64_t>& ms,
                           const std::map<std::pair<int64_t, std::string>, const KernelSum*>& at,
                           Section& sec) {
  const Strings& s = ctx.s;
  const StageMatrix* prefill = nullptr;
  for (const StageMatrix& m : ctx.matrices)
    if (m.stage == "prefill") prefill = &m;
  if (prefill == nullptr) return;
  const auto baselines = baselines_faster_first(ctx.index, *prefill, k.dtype, k.model);
  if (baselines.empty()) return;
  Table t{"table-kernel-vs-prefill-" + slug(k.model) + "-" + slug(k.dtype) + "-" +
              slug(k.file.stem().string()),
          fill(s.kernel_vs_prefill_caption,
               {k.model, dtype_label(k.dtype), variant_label(baselines[0])}),
          {"M"},
          {true},
          {}};
  for (const auto& v : variants) {
    t.header.push_back(v);
    t.numeric.push_back(true);
  }
  for (int64_t x : ms) {
    std::vector<TableCell> row{cell(std::to_string(x))};
    bool any = false;
    for (const auto& v : variants) {
      auto it = at.find({x, v});
      const auto e2e = speedup(ctx.index, "prefill", k.dtype, k.model, v, baselines[0], x);
      if (it == at.end() || !e2e || it->second->speedup_gemm <= 0) {
        row.push_back(cell(kDash));
        continue;
      }
      any = true;
      const double ratio = *e2e / it->second->speedup_gemm;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", ratio);
      row.push_back(cell(format_ratio(*e2e) + " / " + format_ratio(it->second->speedup_gemm) +
                         " (" + buf + ")"));
    }
    if (any) t.rows.push_back(std::move(row));
  }
  if (!t.rows.empty()) sec.blocks.push_back(std::move(t));
}

}  // namespace

void add_performance(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  for (const StageMatrix& m : ctx.matrices) {
    Section top{"perf-" + slug(m.stage), 2, fill(s.sec_perf, {stage_label(s, m.stage)}), {}};
    top.blocks.push_back(Paragraph{s.perf_intro});
    bool any = false;
    for (const auto& dtype : m.dtypes)
      for (const auto& model : m.models) any = any || has_ok_case(ctx.index, m, dtype, model);
    if (!any) top.blocks.push_back(Paragraph{s.no_data});
    doc.sections.push_back(std::move(top));
    for (const auto& dtype : m.dtypes) {
      for (const auto& model : m.models) {
        if (!has_ok_case(ctx.index, m, dtype, model)) continue;
        Section sec{"perf-" + slug(m.stage) + "-" + slug(dtype) + "-" + slug(model),
                    3,
                    model + " · " + dtype_label(dtype),
                    {}};
        add_model_tables(ctx, m, dtype, model, sec);
        doc.sections.push_back(std::move(sec));
      }
      add_speedup_charts(ctx, m, dtype, doc);
    }
  }
}

void add_energy(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section top{"energy", 2, s.sec_energy, {}};
  top.blocks.push_back(Paragraph{s.energy_intro});
  std::vector<Section> subs;
  int64_t saved_all = 0, compared_all = 0;
  auto joules = [&](const std::string& stage, const std::string& dtype, const std::string& model,
                    const std::string& v, int64_t x) -> std::optional<double> {
    const CaseResult* c = ctx.index.find(stage, dtype, model, v, x);
    if (c == nullptr || c->status != CaseStatus::kOk || !c->metrics ||
        !c->metrics->joules_per_token)
      return std::nullopt;
    return *c->metrics->joules_per_token;
  };
  for (const StageMatrix& m : ctx.matrices)
    for (const auto& dtype : m.dtypes)
      for (const auto& model : m.models) {
        bool any = false;
        for (const auto& v : m.variants)
          for (int64_t x : m.ms) any = any || joules(m.stage, dtype, model, v, x).has_value();
        if (!any) continue;
        const std::string stage = stage_label(s, m.stage);
        const std::string id = slug(m.stage) + "-" + slug(dtype) + "-" + slug(model);
        Section sec{"energy-" + id, 3, stage + " · " + model + " · " + dtype_label(dtype), {}};
        Table t{"table-energy-" + id,
                fill(s.energy_caption, {stage, model, dtype_label(dtype)}),
                {"M"},
                {true},
                {}};
        for (const auto& v : m.variants) {
          t.header.push_back(variant_label(v));
          t.numeric.push_back(true);
        }
        int64_t saved = 0, compared = 0;
        for (int64_t x : m.ms) {
          double best_dense = std::numeric_limits<double>::infinity();
          for (const auto& v : m.variants)
            if (is_dense(v))
              if (auto j = joules(m.stage, dtype, model, v, x))
                best_dense = std::min(best_dense, *j);
          std::vector<TableCell> row{cell(std::to_string(x))};
          for (const auto& v : m.variants) {
            const auto j = joules(m.stage, dtype, model, v, x);
            if (!j) {
              const CaseResult* c = ctx.index.find(m.stage, dtype, model, v, x);
              row.push_back(c && c->status == CaseStatus::kOk ? cell(kDash) : state_cell(s, c));
              continue;
            }
            if (is_dense(v) || !std::isfinite(best_dense)) {
              row.push_back(cell(format_millijoules(*j)));
              continue;
            }
            const double change = *j / best_dense - 1.0;
            ++compared;
            saved += change < 0;
            row.push_back(cell(format_millijoules(*j) + " (" + format_percent_change(change) + ")",
                               change < 0 ? "ok" : "failed"));
          }
          t.rows.push_back(std::move(row));
        }
        sec.blocks.push_back(std::move(t));
        if (compared > 0)
          sec.blocks.push_back(
              Paragraph{fill(s.energy_saved, {std::to_string(saved), std::to_string(compared)})});
        saved_all += saved;
        compared_all += compared;
        subs.push_back(std::move(sec));
      }
  if (subs.empty())
    top.blocks.push_back(Paragraph{s.energy_none});
  else if (compared_all > 0)
    top.blocks.push_back(
        Paragraph{fill(s.energy_saved, {std::to_string(saved_all), std::to_string(compared_all)})});
  doc.sections.push_back(std::move(top));
  for (auto& sec : subs) doc.sections.push_back(std::move(sec));
}

void add_kernel(const ReportContext& ctx, Document& doc) {
  const Strings& s = ctx.s;
  Section sec{"kernel", 2, s.sec_kernel, {}};
  std::vector<const KernelBenchFile*> files;
  for (const auto& k : ctx.results.kernel_benches)
    if (!k.sums.empty()) files.push_back(&k);
  if (files.empty()) {
    sec.blocks.push_back(Paragraph{s.kernel_none});
    doc.sections.push_back(std::move(sec));
    return;
  }
  sec.blocks.push_back(Paragraph{s.kernel_intro});
  std::sort(files.begin(), files.end(), [](const KernelBenchFile* a, const KernelBenchFile* b) {
    return std::tie(a->model, a->dtype, a->file) < std::tie(b->model, b->dtype, b->file);
  });
  for (const KernelBenchFile* k : files) {
    std::vector<std::string> variants;
    std::vector<int64_t> ms;
    std::map<std::pair<int64_t, std::string>, const KernelSum*> at;
    for (const KernelSum& sum : k->sums) {
      if (std::find(variants.begin(), variants.end(), sum.variant) == variants.end())
        variants.push_back(sum.variant);
      if (std::find(ms.begin(), ms.end(), sum.m) == ms.end()) ms.push_back(sum.m);
      at[{sum.m, sum.variant}] = &sum;
    }
    std::sort(variants.begin(), variants.end(), [](const std::string& a, const std::string& b) {
      return variant_rank(a) < variant_rank(b);
    });
    std::sort(ms.begin(), ms.end());
    Table t{"table-kernel-" + slug(k->model) + "-" + slug(k->dtype) + "-" +
                slug(k->file.stem().string()),
            fill(s.kernel_caption,
                 {k->model, dtype_label(k->dtype), k->device.empty() ? kDash : k->device,
                  k->epilogue.empty() ? kDash : k->epilogue}),
            {"M"},
            {true},
            {},
            true};
    for (const auto& v : variants) {
      t.header.push_back(v);
      t.numeric.push_back(true);
    }
    for (int64_t x : ms) {
      std::vector<TableCell> row{cell(std::to_string(x))};
      for (const auto& v : variants) {
        auto it = at.find({x, v});
        row.push_back(it == at.end() ? cell(kDash)
                                     : cell(format_ratio(it->second->speedup_gemm) + " / " +
                                            format_ratio(it->second->speedup_layer)));
      }
      t.rows.push_back(std::move(row));
    }
    std::vector<TableCell> bound{cell(s.row_bound)};
    for (const auto& v : variants) {
      std::string b = kDash;
      try {
        b = format_ratio(speedup_bound(v));
      } catch (const std::exception&) {
      }
      bound.push_back(cell(b));
    }
    t.rows.push_back(std::move(bound));
    sec.blocks.push_back(std::move(t));
    add_kernel_vs_prefill(ctx, *k, variants, ms, at, sec);
  }
  doc.sections.push_back(std::move(sec));
}

}  // namespace slidesparse::report
