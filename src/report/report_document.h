// The report as a language-neutral document: sections of paragraphs, lists, code, tables and
// charts, built once from the results and then written as Markdown, HTML and SVG. Text is plain
// (the writers escape it); numbers are already formatted, chart points keep their raw values.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace slidesparse::report {

struct Paragraph {
  std::string text;
  bool emphasis = false;  // a warning line (partial run)
};

struct BulletList {
  std::vector<std::string> items;
};

struct CodeBlock {
  std::string text;  // shell commands, one per line
};

struct TableCell {
  std::string text;
  bool code = false;  // a command or a path
  std::string state;  // "ok" | "failed" | "skipped" | "missing" | "": colours the HTML cell
};

struct Table {
  std::string id;
  std::string caption;
  std::vector<std::string> header;
  std::vector<bool> numeric;  // right-aligned columns (header.size() entries)
  std::vector<std::vector<TableCell>> rows;
  bool last_row_is_total = false;
};

struct ChartPoint {
  double x = 0;
  double y = 0;
};

struct ChartSeries {
  std::string name;
  std::vector<ChartPoint> points;  // x ascending
  bool baseline = false;           // a dense baseline: drawn dashed
};

struct ReferenceLine {
  double y = 0;
  std::string label;  // "bound L/(L-2) = 1.33×"
};

// y against x, x on a log-2 axis (M); a legend names every series.
struct LineChart {
  std::string id;
  std::string title;
  std::string x_label;
  std::string y_label;
  bool y_from_zero = true;
  std::vector<ChartSeries> series;
  std::vector<ReferenceLine> references;
};

// A grid of case states: one row per (dtype, variant), one column per (model, M).
struct GridChart {
  std::string id;
  std::string title;
  std::vector<std::string> row_labels;
  std::vector<std::string> row_keys;              // data attributes: "int8 2:8"
  std::vector<std::string> column_groups;         // model names
  std::vector<std::vector<long long>> column_ms;  // per group, its Ms
  std::vector<std::vector<std::string>> states;   // [row][column over all groups]
  std::vector<std::string> legend_states;         // ok, failed, skipped, missing
  std::vector<std::string> legend_labels;         // translated names of those states
  std::string x_label;
};

using Block = std::variant<Paragraph, BulletList, CodeBlock, Table, LineChart, GridChart>;

struct Section {
  std::string id;  // stable anchor: "failures", "perf-prefill", ...
  int level = 2;   // 2 or 3
  std::string title;
  std::vector<Block> blocks;
};

struct Document {
  std::string lang;  // "en" | "zh"
  std::string title;
  std::string subtitle;
  std::string contents_label;  // "Contents"
  std::vector<Section> sections;
};

}  // namespace slidesparse::report
