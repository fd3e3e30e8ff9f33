// Markdown rendering of the report (see markdown_writer.h). Every table row has the header's
// column count; cells are escaped so a '|' in an error message cannot split a row.
#include "report/markdown_writer.h"

#include <sstream>
#include <type_traits>

#include "report/markup_escape.h"
#include "report/svg_chart.h"

namespace slidesparse::report {
namespace {

void write_table(std::ostringstream& os, const Table& t) {
  if (!t.caption.empty()) os << "*" << escape_markdown_text(t.caption) << "*\n\n";
  const size_t n = t.header.size();
  os << "|";
  for (const auto& h : t.header) os << " " << escape_markdown_cell(h, false) << " |";
  os << "\n|";
  for (size_t i = 0; i < n; ++i)
    os << (i < t.numeric.size() && t.numeric[i] ? " ---: |" : " --- |");
  os << "\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const bool bold = t.last_row_is_total && r + 1 == t.rows.size();
    os << "|";
    for (size_t i = 0; i < n; ++i) {
      const TableCell empty;
      const TableCell& c = i < t.rows[r].size() ? t.rows[r][i] : empty;
      std::string text = escape_markdown_cell(c.text, c.code);
      if (bold && !text.empty() && !c.code) text = "**" + text + "**";
      os << " " << text << " |";
    }
    os << "\n";
  }
  os << "\n";
}

}  // namespace

MarkdownOutput render_markdown(const Document& doc, const std::string& chart_folder) {
  MarkdownOutput out;
  std::ostringstream os;
  os << "# " << escape_markdown_text(doc.title) << "\n\n";
  if (!doc.subtitle.empty()) os << "`" << doc.subtitle << "`\n\n";
  os << "**" << escape_markdown_text(doc.contents_label) << "**\n\n";
  for (const Section& s : doc.sections)
    os << (s.level > 2 ? "  - " : "- ") << "[" << escape_markdown_text(s.title) << "](#" << s.id
       << ")\n";
  os << "\n";
  for (const Section& s : doc.sections) {
    os << "<a id=\"" << s.id << "\"></a>\n\n"
       << std::string(static_cast<size_t>(s.level), '#') << " " << escape_markdown_text(s.title)
       << "\n\n";
    for (const Block& b : s.blocks) {
      std::visit(
          [&](const auto& block) {
            using T = std::decay_t<decltype(block)>;
            if constexpr (std::is_same_v<T, Paragraph>) {
              if (block.emphasis)
                os << "> **" << escape_markdown_text(block.text) << "**\n\n";
              else
                os << escape_markdown_text(block.text) << "\n\n";
            } else if constexpr (std::is_same_v<T, BulletList>) {
              for (const auto& item : block.items) os << "- " << escape_markdown_text(item) << "\n";
              os << "\n";
            } else if constexpr (std::is_same_v<T, CodeBlock>) {
              os << "```sh\n"
                 << block.text << (block.text.ends_with('\n') ? "" : "\n") << "```\n\n";
            } else if constexpr (std::is_same_v<T, Table>) {
              write_table(os, block);
            } else if constexpr (std::is_same_v<T, LineChart>) {
              const std::string file = chart_folder + "/" + block.id + ".svg";
              out.charts.emplace_back(file, render_line_chart_svg(block));
              os << "![" << escape_markdown_text(block.title) << "](" << file << ")\n\n";
            } else if constexpr (std::is_same_v<T, GridChart>) {
              const std::string file = chart_folder + "/" + block.id + ".svg";
              out.charts.emplace_back(file, render_grid_chart_svg(block));
              os << "![" << escape_markdown_text(block.title) << "](" << file << ")\n\n";
            }
          },
          b);
    }
  }
  out.text = os.str();
  return out;
}

}  // namespace slidesparse::report
