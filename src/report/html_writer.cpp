// HTML rendering of the report (see html_writer.h).
#include "report/html_writer.h"

#include <sstream>
#include <type_traits>

#include "report/markup_escape.h"
#include "report/svg_chart.h"

namespace slidesparse::report {
namespace {

constexpr const char* kStyle = R"css(
body { margin: 0; background: #f6f7f9; color: #1a1a1a;
  font: 14px/1.5 'Segoe UI', 'Helvetica Neue', Arial, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 48px; background: #ffffff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #d8dde3; }
h3 { font-size: 16px; margin: 26px 0 8px; }
p.subtitle { margin: 0 0 16px; color: #555555; }
p.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 8px 12px; font-weight: 600; }
code, pre { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f1f3f5; padding: 10px 12px; overflow-x: auto; border-radius: 4px; }
nav.toc { background: #f8f9fb; border: 1px solid #e3e6ea; padding: 8px 16px; border-radius: 4px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; }
nav.toc a { color: #0b5cad; text-decoration: none; }
.table-wrap { overflow-x: auto; margin: 8px 0 18px; }
table { border-collapse: collapse; font-size: 13px; }
caption { text-align: left; font-style: italic; color: #444444; padding: 4px 0; caption-side: top; }
th, td { border: 1px solid #d5d9de; padding: 4px 9px; vertical-align: top; }
th { background: #eef1f4; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; background: #f7f8fa; }
td.ok { background: #e7f5ea; }
td.failed { background: #fde8e8; }
td.skipped { background: #eeeeee; color: #555555; }
td.missing { background: #fff6dc; }
td code { white-space: nowrap; }
figure.chart-figure { margin: 10px 0 22px; }
svg.chart { display: block; max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
footer { margin-top: 40px; color: #777777; font-size: 12px; }
)css";

void write_table(std::ostringstream& os, const Table& t) {
  os << "<div class=\"table-wrap\"><table";
  if (!t.id.empty()) os << " id=\"" << escape_xml(t.id) << "\"";
  os << ">\n";
  if (!t.caption.empty()) os << "<caption>" << escape_xml(t.caption) << "</caption>\n";
  auto numeric = [&](size_t i) { return i < t.numeric.size() && t.numeric[i]; };
  os << "<thead><tr>";
  for (size_t i = 0; i < t.header.size(); ++i)
    os << "<th" << (numeric(i) ? " class=\"num\"" : "") << ">" << escape_xml(t.header[i])
       << "</th>";
  os << "</tr></thead>\n<tbody>\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const bool total = t.last_row_is_total && r + 1 == t.rows.size();
    os << "<tr" << (total ? " class=\"total\"" : "") << ">";
    for (size_t i = 0; i < t.header.size(); ++i) {
      const TableCell empty;
      const TableCell& c = i < t.rows[r].size() ? t.rows[r][i] : empty;
      std::string cls = numeric(i) ? "num" : "";
      if (!c.state.empty()) cls += (cls.empty() ? "" : " ") + c.state;
      os << "<td" << (cls.empty() ? "" : " class=\"" + cls + "\"") << ">";
      if (c.code)
        os << "<code>" << escape_xml(c.text) << "</code>";
      else
        os << escape_xml(c.text);
      os << "</td>";
    }
    os << "</tr>\n";
  }
  os << "</tbody></table></div>\n";
}

}  // namespace

std::string render_html(const Document& doc) {
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\""
     << escape_xml(doc.lang) << "\">\n<head>\n<meta charset=\"utf-8\"/>\n"
     << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
     << "<title>" << escape_xml(doc.title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n"
     << "<body>\n<main>\n<h1>" << escape_xml(doc.title) << "</h1>\n";
  if (!doc.subtitle.empty())
    os << "<p class=\"subtitle\"><code>" << escape_xml(doc.subtitle) << "</code></p>\n";
  // Contents: level-3 sections nested under the level-2 one before them.
  os << "<nav class=\"toc\"><strong>" << escape_xml(doc.contents_label) << "</strong>\n<ol>\n";
  bool open_sub = false, open_item = false;
  for (const Section& s : doc.sections) {
    const std::string link =
        "<a href=\"#" + escape_xml(s.id) + "\">" + escape_xml(s.title) + "</a>";
    if (s.level > 2 && open_item) {
      if (!open_sub) os << "<ol>\n";
      open_sub = true;
      os << "<li>" << link << "</li>\n";
      continue;
    }
    if (open_sub) os << "</ol>";
    if (open_item) os << "</li>\n";
    open_sub = false;
    os << "<li>" << link;
    open_item = true;
  }
  if (open_sub) os << "</ol>";
  if (open_item) os << "</li>\n";
  os << "</ol>\n</nav>\n";
  for (const Section& s : doc.sections) {
    const std::string h = s.level > 2 ? "h3" : "h2";
    os << "<section id=\"" << escape_xml(s.id) << "\">\n<" << h << ">" << escape_xml(s.title)
       << "</" << h << ">\n";
    for (const Block& b : s.blocks) {
      std::visit(
          [&](const auto& block) {
            using T = std::decay_t<decltype(block)>;
            if constexpr (std::is_same_v<T, Paragraph>) {
              os << "<p" << (block.emphasis ? " class=\"warning\"" : "") << ">"
                 << escape_xml(block.text) << "</p>\n";
            } else if constexpr (std::is_same_v<T, BulletList>) {
              os << "<ul>\n";
              for (const auto& item : block.items) os << "<li>" << escape_xml(item) << "</li>\n";
              os << "</ul>\n";
            } else if constexpr (std::is_same_v<T, CodeBlock>) {
              os << "<pre><code>" << escape_xml(block.text) << "</code></pre>\n";
            } else if constexpr (std::is_same_v<T, Table>) {
              write_table(os, block);
            } else if constexpr (std::is_same_v<T, LineChart>) {
              os << "<figure class=\"chart-figure\">\n"
                 << render_line_chart_svg(block) << "</figure>\n";
            } else if constexpr (std::is_same_v<T, GridChart>) {
              os << "<figure class=\"chart-figure\">\n"
                 << render_grid_chart_svg(block) << "</figure>\n";
            }
          },
          b);
    }
    os << "</section>\n";
  }
  os << "<footer>slidesparse report</footer>\n</main>\n</body>\n</html>\n";
  return os.str();
}

}  // namespace slidesparse::report
