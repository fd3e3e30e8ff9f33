// Internal to the report builder: what every section builder reads (results, derived numbers,
// strings) and the labels all sections share. Section builders append to the document in order.
#pragma once

#include <string>
#include <vector>

#include "report/analysis.h"
#include "report/i18n.h"
#include "report/report_document.h"
#include "report/results_model.h"

namespace slidesparse::report {

struct ReportContext {
  const ResultsModel& results;
  const Strings& s;
  CaseIndex index;
  std::vector<StageMatrix> matrices;
  std::vector<MissingCase> missing;
  std::vector<std::string> unfinished_tasks;  // "7 decode"
  // The builds that measured the cases, most cases first ("" = not recorded), with their counts.
  std::vector<std::pair<std::string, int64_t>> builds;

  ReportContext(const ResultsModel& r, const Strings& strings);
  // No run.json, a task not run, or cases missing from the matrix.
  bool incomplete() const { return !results.run || !unfinished_tasks.empty() || !missing.empty(); }
};

std::string stage_label(const Strings& s, const std::string& stage);
std::string dtype_label(const std::string& dtype);           // INT8
std::string variant_label(const std::string& variant);       // cuBLASLt, cuBLASLt FA, 2:8
std::string variant_long_label(const std::string& variant);  // ... cuSPARSELt 2:8
std::string state_label(const Strings& s, CaseStatus status);
std::string join(const std::vector<std::string>& items, const std::string& sep);
// The cell of a case that has no number: its state (missing, failed, skipped), else a dash.
TableCell state_cell(const Strings& s, const CaseResult* c);
// The cuSPARSELt patterns among a stage's variants, in variant order.
std::vector<std::string> patterns_of(const StageMatrix& m);
// "Qwen2.5-7B" -> "qwen2-5-7b": ids of sections and charts.
std::string slug(const std::string& text);

// Section builders, in the report's order.
void add_overview(const ReportContext& ctx, Document& doc);
void add_hardware(const ReportContext& ctx, Document& doc);
void add_tasks(const ReportContext& ctx, Document& doc);
void add_tuning(const ReportContext& ctx, Document& doc);
void add_stage_passes(const ReportContext& ctx, Document& doc);
void add_failures(const ReportContext& ctx, Document& doc);
void add_missing(const ReportContext& ctx, Document& doc);
void add_notes(const ReportContext& ctx, Document& doc);
void add_performance(const ReportContext& ctx, Document& doc);  // performance_sections.cpp
void add_energy(const ReportContext& ctx, Document& doc);       // performance_sections.cpp
void add_kernel(const ReportContext& ctx, Document& doc);       // performance_sections.cpp
void add_inventory(const ReportContext& ctx, Document& doc);

}  // namespace slidesparse::report
