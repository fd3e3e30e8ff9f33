// The report built from the fixture: every section with the right counts, the failed cases and
// their rerun commands, well-formed Markdown tables, chart points equal to the recorded numbers
// and to the table cells, the Chinese headings.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/temp_dir.h"
#include "report/html_writer.h"
#include "report/i18n.h"
#include "report/markdown_writer.h"
#include "report/number_format.h"
#include "report/report_builder.h"
#include "report/results_model.h"
#include "report_fixture.h"
#include "slidesparse/error.h"

namespace slidesparse::report {
namespace {

using test::fixture_results;

const Document& english() {
  static const Document doc = build_report(load_results(fixture_results()), Lang::kEnglish);
  return doc;
}

const Section* find_section(const Document& doc, const std::string& id) {
  for (const auto& s : doc.sections)
    if (s.id == id) return &s;
  return nullptr;
}

const Table* find_table(const Document& doc, const std::string& id) {
  for (const auto& s : doc.sections)
    for (const auto& b : s.blocks)
      if (auto t = std::get_if<Table>(&b); t && t->id == id) return t;
  return nullptr;
}

const LineChart* find_line_chart(const Document& doc, const std::string& id) {
  for (const auto& s : doc.sections)
    for (const auto& b : s.blocks)
      if (auto c = std::get_if<LineChart>(&b); c && c->id == id) return c;
  return nullptr;
}

TEST(ReportContent, EverySectionIsPresent) {
  for (const char* id : {"overview", "hardware", "tasks", "tuning", "stage-prefill", "stage-decode",
                         "stage-simple-prefill", "stage-simple-decode", "failures", "missing",
                         "notes", "perf-prefill", "perf-decode", "energy", "kernel", "inventory",
                         "perf-prefill-int8-qwen2-5-7b", "perf-prefill-int8-speedup",
                         "perf-decode-int8-llama3-2-1b"})
    EXPECT_NE(find_section(english(), id), nullptr) << id;
  // FP8 is all skipped: no throughput section for it.
  EXPECT_EQ(find_section(english(), "perf-prefill-fp8-llama3-2-1b"), nullptr);
}

TEST(ReportContent, PartialRunSaysWhatIsMissing) {
  const Section* s = find_section(english(), "overview");
  ASSERT_NE(s, nullptr);
  bool banner = false;
  for (const auto& b : s->blocks)
    if (auto p = std::get_if<Paragraph>(&b); p && p->emphasis) {
      banner = true;
      EXPECT_NE(p->text.find("2 cases missing"), std::string::npos) << p->text;
      EXPECT_NE(p->text.find("7 decode"), std::string::npos) << p->text;
      EXPECT_NE(p->text.find("no finish time"), std::string::npos) << p->text;
    }
  EXPECT_TRUE(banner);
  const Table* missing = find_table(english(), "table-missing");
  ASSERT_NE(missing, nullptr);
  ASSERT_EQ(missing->rows.size(), 2u);
  EXPECT_EQ(missing->rows[0][4].text, "2048");  // prefill Qwen2.5-7B 2:4
  EXPECT_EQ(missing->rows[1][4].text, "128");   // decode Llama3.2-1B cuBLASLt FA
}

TEST(ReportContent, HardwareTableNamesTheVersions) {
  const Table* hw = find_table(english(), "table-hardware");
  ASSERT_NE(hw, nullptr);
  std::vector<std::string> items;
  for (const auto& row : hw->rows) items.push_back(row[0].text + "=" + row[1].text);
  const std::vector<std::string> expected = {"GPU=NVIDIA A100-SXM4-80GB",
                                             "Compute capability=8.0",
                                             "CUDA=13.0",
                                             "CUDA runtime=13.0 (13000)",
                                             "CUDA driver API=13.0 (13000)",
                                             "cuBLASLt=13.1.0 (130100)",
                                             "cuSPARSELt=0.8.0 (800)",
                                             "Driver=580.159.04"};
  ASSERT_GE(items.size(), expected.size());
  EXPECT_EQ(std::vector<std::string>(items.begin(), items.begin() + expected.size()), expected);
}

TEST(ReportContent, TablesHaveTheRightCounts) {
  const Table* tasks = find_table(english(), "table-tasks");
  ASSERT_NE(tasks, nullptr);
  EXPECT_EQ(tasks->rows.size(), 6u);  // 5 tasks + total
  EXPECT_EQ(tasks->rows[3][2].text, "partly failed");
  EXPECT_EQ(tasks->rows[4][2].text, "not run");
  const Table* tuning = find_table(english(), "table-tuning");
  ASSERT_NE(tuning, nullptr);
  EXPECT_EQ(tuning->rows.size(), 4u);
  EXPECT_EQ(tuning->rows.back()[2].text, "7");  // 3 + 4 entries
  EXPECT_EQ(tuning->rows[2][3].text, "not found");

  const Table* passes = find_table(english(), "table-passes-prefill");
  ASSERT_NE(passes, nullptr);
  EXPECT_EQ(passes->header.size(), 4u);  // backend, 2 models, total
  EXPECT_EQ(passes->rows.size(), 9u);    // 2 dtypes × 4 variants + total
  EXPECT_EQ(passes->rows.back().back().text, "22/48 (1 failed, 24 skipped, 1 missing)");
  EXPECT_EQ(passes->rows[3][0].text, "INT8 · cuSPARSELt 2:8");
  EXPECT_EQ(passes->rows[3][2].text, "2/3 (1 failed)");
  EXPECT_EQ(passes->rows[3][2].state, "failed");
  const Table* decode = find_table(english(), "table-passes-decode");
  ASSERT_NE(decode, nullptr);
  EXPECT_EQ(decode->rows.back().back().text, "6/8 (1 failed, 1 missing)");

  const Table* failures = find_table(english(), "table-failures");
  ASSERT_NE(failures, nullptr);
  ASSERT_EQ(failures->rows.size(), 2u);
  EXPECT_EQ(failures->rows[0][7].text, "CudaError");
  EXPECT_EQ(failures->rows[1][7].text, "Timeout");
  EXPECT_EQ(failures->rows[0][9].text,
            "slidesparse bench prefill --model Qwen2.5-7B --dtype int8 --backend cusparselt "
            "--sparsity 2:8 --M 2048");
  EXPECT_TRUE(failures->rows[0][9].code);

  const Table* kernel =
      find_table(english(), "table-kernel-qwen2-5-7b-int8-kernel-qwen2-5-7b-int8-cusparselt");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(kernel->rows.size(), 3u);  // M 512, 2048, bound
  EXPECT_EQ(kernel->rows[1][1].text, "1.61× / 1.42×");
  EXPECT_EQ(kernel->rows[2][2].text, "1.33×");
}

TEST(ReportContent, KernelSpeedupBesideThePrefillOne) {
  const Table* t = find_table(
      english(), "table-kernel-vs-prefill-qwen2-5-7b-int8-kernel-qwen2-5-7b-int8-cusparselt");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->rows.size(), 1u);  // at M = 2048 the prefill 2:4 case is missing and 2:8 failed
  EXPECT_EQ(t->rows[0][1].text, format_ratio(1.30 / 1.04) + " / 1.50× (0.83)");
}

TEST(ReportContent, SpeedupsAreOverTheFasterBaselineFirst) {
  const Table* sp = find_table(english(), "table-speedup-prefill-int8-llama3-2-1b");
  ASSERT_NE(sp, nullptr);
  EXPECT_NE(sp->caption.find("over cuBLASLt FA (the faster"), std::string::npos) << sp->caption;
  EXPECT_EQ(sp->header, (std::vector<std::string>{"M", "2:4", "2:8"}));
  // 1.30 / 1.04 and 1.30 / 1.00.
  EXPECT_EQ(sp->rows[0][1].text, format_ratio(1.30 / 1.04) + " / " + format_ratio(1.30));
  EXPECT_EQ(sp->rows.back()[0].text, "bound L/(L−2)");
  EXPECT_EQ(sp->rows.back()[1].text, "2.00×");
  EXPECT_EQ(sp->rows.back()[2].text, "1.33×");
  const Table* q = find_table(english(), "table-speedup-prefill-int8-qwen2-5-7b");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->rows[2][1].text, "missing");
  EXPECT_EQ(q->rows[2][2].text, "failed");
}

TEST(ReportContent, HeadlineSpeedupsAreTheSpeedupTablesCells) {
  const Table* h = find_table(english(), "table-headline");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->header, (std::vector<std::string>{"Stage · M", "Precision", "Model", "Baseline",
                                                 "2:4", "2:8"}));
  EXPECT_EQ(h->rows.back()[0].text, "bound L/(L−2)");
  EXPECT_EQ(h->rows.back()[4].text, "2.00×");
  const Table* sp = find_table(english(), "table-speedup-prefill-int8-llama3-2-1b");
  ASSERT_NE(sp, nullptr);
  int checked = 0;
  for (const auto& row : h->rows) {
    if (row[0].text.rfind("Prefill · ", 0) != 0 || row[1].text != "INT8" ||
        row[2].text != "Llama3.2-1B")
      continue;
    EXPECT_EQ(row[3].text, "cuBLASLt FA");  // the faster baseline of the fixture
    const std::string m = row[0].text.substr(std::string("Prefill · ").size());
    for (const auto& sp_row : sp->rows)
      if (sp_row[0].text == m) {
        for (size_t i = 1; i <= 2; ++i)
          EXPECT_EQ(row[3 + i].text, sp_row[i].text.substr(0, sp_row[i].text.find(" / ")));
        ++checked;
      }
  }
  EXPECT_EQ(checked, 1);
}

TEST(ReportContent, NotesNameSkipsAndReruns) {
  const Section* s = find_section(english(), "notes");
  ASSERT_NE(s, nullptr);
  const auto* list = std::get_if<BulletList>(&s->blocks.at(0));
  ASSERT_NE(list, nullptr);
  std::string all;
  for (const auto& item : list->items) all += item + "\n";
  EXPECT_NE(all.find("24 cases skipped: fp8 needs compute capability >= 8.9"), std::string::npos)
      << all;
  EXPECT_NE(all.find("Llama3.2-1B_M1024.rerun.json (OutOfMemoryError"), std::string::npos) << all;
}

TEST(ReportContent, EnergySaysWhetherSparsitySaved) {
  const Table* e = find_table(english(), "table-energy-prefill-int8-llama3-2-1b");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->rows[0][1].text, kDash);  // no NVML reading for that case
  EXPECT_EQ(e->rows[0][3].state, "ok");  // 2:4 used less energy per token
  EXPECT_NE(e->rows[0][3].text.find("(−"), std::string::npos) << e->rows[0][3].text;
}

// Pulls the recorded tokens/s of a case straight from its JSON file.
double recorded_tokens_per_s(const std::string& stage, const std::string& dtype_dir,
                             const std::string& backend_dir, const std::string& file) {
  const auto path = fixture_results() / stage / ("A100_cc80_" + dtype_dir + "_cuda13.0") /
                    backend_dir / "json" / file;
  return nlohmann::json::parse(test::read_text(path))["metrics"]["tokens_per_s"].get<double>();
}

TEST(ReportContent, ChartPointsMatchTheTablesAndTheJson) {
  const std::string html = render_html(english());
  // The throughput chart of Qwen2.5-7B INT8 prefill, as written into the page.
  const auto start = html.find(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" "
      "id=\"chart-tput-prefill-int8-qwen2-5-7b\"");
  ASSERT_NE(start, std::string::npos);
  const std::string svg = html.substr(start, html.find("</svg>", start) - start);
  const std::regex point(
      R"re(<circle class="pt"[^>]* data-series="([^"]*)" data-x="([^"]*)" data-y="([^"]*)")re");
  std::map<std::pair<std::string, long>, double> points;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), point); it != std::sregex_iterator();
       ++it)
    points[{(*it)[1].str(), std::stol((*it)[2].str())}] = std::stod((*it)[3].str());
  EXPECT_EQ(points.size(), 10u);  // 12 cases, one failed, one missing
  const std::map<std::string, std::string> dirs = {{"cuBLASLt", "cublaslt"},
                                                   {"cuBLASLt FA", "cublaslt-fa"},
                                                   {"2:4", "cusparselt/2_4"},
                                                   {"2:8", "cusparselt/2_8"}};
  const Table* table = find_table(english(), "table-tput-prefill-int8-qwen2-5-7b");
  ASSERT_NE(table, nullptr);
  for (const auto& [key, y] : points) {
    const double recorded =
        recorded_tokens_per_s("prefill", "INT8", dirs.at(key.first),
                              "Qwen2.5-7B_M" + std::to_string(key.second) + ".json");
    EXPECT_NEAR(y, recorded, recorded * 1e-9) << key.first << " M=" << key.second;
    // The same value in the table: row of M, column of the series.
    size_t col = 0;
    for (size_t i = 0; i < table->header.size(); ++i)
      if (table->header[i] == key.first) col = i;
    ASSERT_GT(col, 0u);
    bool found = false;
    for (const auto& row : table->rows)
      if (row[0].text == std::to_string(key.second)) {
        EXPECT_EQ(row[col].text, format_rate(y));
        found = true;
      }
    EXPECT_TRUE(found);
  }
  // The speed-up chart of 2:4: ratio of the recorded numbers over the faster baseline, and its
  // bound.
  const LineChart* sp = find_line_chart(english(), "chart-speedup-prefill-int8-2-4");
  ASSERT_NE(sp, nullptr);
  ASSERT_EQ(sp->series.size(), 2u);
  ASSERT_FALSE(sp->series[0].points.empty());
  const auto& p = sp->series[0].points[0];  // Llama3.2-1B, M = 512
  EXPECT_DOUBLE_EQ(
      p.y, recorded_tokens_per_s("prefill", "INT8", "cusparselt/2_4", "Llama3.2-1B_M512.json") /
               recorded_tokens_per_s("prefill", "INT8", "cublaslt-fa", "Llama3.2-1B_M512.json"));
  ASSERT_EQ(sp->references.size(), 2u);
  EXPECT_DOUBLE_EQ(sp->references[0].y, 2.0);
  EXPECT_NE(html.find("class=\"reference\" data-y=\"2\""), std::string::npos);
  // The pass/fail grid marks the failed case.
  EXPECT_NE(
      html.find(
          "data-row=\"int8 2:8\" data-model=\"Qwen2.5-7B\" data-m=\"2048\" data-state=\"failed\""),
      std::string::npos);
  EXPECT_NE(
      html.find(
          "data-row=\"int8 2:4\" data-model=\"Qwen2.5-7B\" data-m=\"2048\" data-state=\"missing\""),
      std::string::npos);
}

// Every Markdown table: header, separator, rows, all with the same number of cells.
TEST(ReportContent, MarkdownTablesAreWellFormed) {
  const MarkdownOutput md = render_markdown(english());
  std::istringstream in(md.text);
  std::string line;
  std::vector<std::vector<std::string>> tables(1);
  auto cells = [](const std::string& l) {
    int n = 0;
    for (size_t i = 0; i < l.size(); ++i)
      if (l[i] == '|' && (i == 0 || l[i - 1] != '\\')) ++n;
    return n - 1;
  };
  while (std::getline(in, line)) {
    if (line.starts_with("|"))
      tables.back().push_back(line);
    else if (!tables.back().empty())
      tables.emplace_back();
  }
  if (tables.back().empty()) tables.pop_back();
  EXPECT_GE(tables.size(), 15u);
  for (const auto& t : tables) {
    ASSERT_GE(t.size(), 3u) << t[0];
    EXPECT_TRUE(std::regex_match(t[1], std::regex(R"(\|( -{3,}:? \|)+)"))) << t[1];
    for (const auto& row : t) {
      EXPECT_EQ(cells(row), cells(t[0])) << row;
      EXPECT_TRUE(row.ends_with(" |")) << row;
    }
  }
  EXPECT_NE(md.text.find(
                "`slidesparse bench prefill --model Qwen2.5-7B --dtype int8 --backend cusparselt "
                "--sparsity 2:8 --M 2048`"),
            std::string::npos);
  EXPECT_NE(md.text.find("```sh\nslidesparse bench prefill --model Qwen2.5-7B"), std::string::npos);
  for (const char* heading :
       {"## Summary", "## Hardware and software", "## Tasks", "## Tuning tables",
        "## Prefill: configuration and pass counts", "## Failed cases", "## Missing cases",
        "## Notes of the run", "## Energy per token", "## Kernel-level speed-ups (bench kernel)",
        "## Result files"})
    EXPECT_NE(md.text.find(std::string("\n") + heading + "\n"), std::string::npos) << heading;
  EXPECT_FALSE(md.charts.empty());
  EXPECT_NE(md.text.find("](charts/chart-grid-prefill.svg)"), std::string::npos);
}

TEST(ReportContent, ChineseHasTheChineseHeadings) {
  const Document zh = build_report(load_results(fixture_results()), Lang::kChinese);
  const std::string md = render_markdown(zh).text;
  const std::string html = render_html(zh);
  for (const char* heading :
       {"## 概要", "## 硬件与软件", "## 任务", "## 调优表", "## 预填充（prefill）：配置与通过数",
        "## 失败的用例", "## 缺失的用例", "## 运行说明", "## 每 token 能耗", "## 结果文件清单"})
    EXPECT_NE(md.find(heading), std::string::npos) << heading;
  EXPECT_NE(html.find("lang=\"zh\""), std::string::npos);
  EXPECT_NE(html.find("吞吐量（tok/s）"), std::string::npos);
  // Same structure as the English one.
  ASSERT_EQ(zh.sections.size(), english().sections.size());
  for (size_t i = 0; i < zh.sections.size(); ++i)
    EXPECT_EQ(zh.sections[i].id, english().sections[i].id);
}

TEST(ReportStrings, EveryStringIsTranslatedWithTheSamePlaceholders) {
  constexpr size_t n = sizeof(Strings) / sizeof(const char*);
  const auto* en = reinterpret_cast<const char* const*>(&strings(Lang::kEnglish));
  const auto* zh = reinterpret_cast<const char* const*>(&strings(Lang::kChinese));
  auto placeholders = [](const std::string& s) {
    std::string out;
    for (size_t i = 0; i + 2 < s.size(); ++i)
      if (s[i] == '{' && s[i + 2] == '}') out += s[i + 1];
    std::sort(out.begin(), out.end());
    return out;
  };
  for (size_t i = 0; i < n; ++i) {
    ASSERT_NE(en[i], nullptr) << "English string " << i;
    ASSERT_NE(zh[i], nullptr) << "Chinese string " << i;
    EXPECT_NE(std::string(en[i]), "") << i;
    EXPECT_EQ(placeholders(en[i]), placeholders(zh[i])) << en[i] << " / " << zh[i];
  }
  EXPECT_EQ(fill("{1} of {0}", {"a", "b"}), "b of a");
  EXPECT_EQ(parse_lang("zh"), Lang::kChinese);
  EXPECT_THROW(parse_lang("de"), Error);
}

}  // namespace
}  // namespace slidesparse::report

namespace slidesparse::report {
namespace {

// Case JSONs of the fixture given `build` (all, or every other one with a second build).
std::filesystem::path fixture_with_builds(const test::TempDir& dir, bool mixed) {
  const std::filesystem::path results = dir.path() / "results";
  std::filesystem::copy(fixture_results(), results, std::filesystem::copy_options::recursive);
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(results)) {
    const auto path = e.path();
    if (path.extension() != ".json" || path.parent_path().filename() != "json") continue;
    nlohmann::json j = nlohmann::json::parse(test::read_text(path));
    j["build"] = mixed && n++ % 2 ? "0.1.0+src.bbbbbbbbbbbb" : "0.1.0+src.aaaaaaaaaaaa";
    std::ofstream(path) << j.dump(1);
  }
  return results;
}

std::string overview_warnings(const Document& doc) {
  std::string text;
  for (const auto& s : doc.sections)
    if (s.id == "overview")
      for (const auto& b : s.blocks)
        if (auto p = std::get_if<Paragraph>(&b); p && p->emphasis) text += p->text + "\n";
  return text;
}

std::string build_row(const Document& doc) {
  const Table* t = find_table(doc, "table-hardware");
  if (t == nullptr) return "";
  for (const auto& row : t->rows)
    if (row[0].text == strings(Lang::kEnglish).hw_build) return row[1].text;
  return "";
}

TEST(ReportContent, CasesOfTwoBuildsAreSaidToBeMixed) {
  test::TempDir dir;
  const Document doc = build_report(load_results(fixture_with_builds(dir, true)), Lang::kEnglish);
  const std::string warnings = overview_warnings(doc);
  EXPECT_NE(warnings.find("measured by 2 builds"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("0.1.0+src.aaaaaaaaaaaa"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("0.1.0+src.bbbbbbbbbbbb"), std::string::npos) << warnings;
  EXPECT_NE(build_row(doc).find("0.1.0+src.bbbbbbbbbbbb"), std::string::npos) << build_row(doc);
  // Chinese too.
  test::TempDir dir_zh;
  const Document zh = build_report(load_results(fixture_with_builds(dir_zh, true)), Lang::kChinese);
  EXPECT_NE(overview_warnings(zh).find("2 个构建"), std::string::npos) << overview_warnings(zh);
}

TEST(ReportContent, OneBuildIsNamedAndNotAWarning) {
  test::TempDir dir;
  const Document doc = build_report(load_results(fixture_with_builds(dir, false)), Lang::kEnglish);
  EXPECT_EQ(overview_warnings(doc).find("builds"), std::string::npos) << overview_warnings(doc);
  EXPECT_EQ(build_row(doc),
            "0.1.0+src.aaaaaaaaaaaa: " + std::to_string(test::kFixtureCases) + " cases");
  // The fixture itself predates the field: one group, "not recorded".
  EXPECT_EQ(build_row(english()),
            "not recorded: " + std::to_string(test::kFixtureCases) + " cases");
}

}  // namespace
}  // namespace slidesparse::report
