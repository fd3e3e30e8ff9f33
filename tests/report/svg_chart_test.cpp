// The SVG charts' layout: a chart is at least as wide as its title, so a narrow grid (one model,
// one M: the simple benchmark) shows its whole title instead of clipping it at both ends.
#include "report/svg_chart.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace slidesparse::report {
namespace {

double svg_width(const std::string& svg) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(svg, m, std::regex("viewBox=\"0 0 ([0-9.]+) ")));
  return m.empty() ? 0 : std::stod(m[1].str());
}

GridChart one_cell_grid(const std::string& title) {
  GridChart g;
  g.id = "chart-grid-test";
  g.title = title;
  g.row_labels = {"INT8 cuBLASLt"};
  g.row_keys = {"int8 cublaslt"};
  g.column_groups = {"Llama3.2-1B"};
  g.column_ms = {{512}};
  g.states = {{"ok"}};
  g.legend_states = {"ok"};
  g.legend_labels = {"ok"};
  g.x_label = "M, per model";
  return g;
}

TEST(SvgChart, NarrowGridIsWidenedToItsTitle) {
  const std::string title(100, 'x');  // 100 Latin characters: ~780 px of bold 14 px text
  EXPECT_GE(svg_width(render_grid_chart_svg(one_cell_grid(title))), 100 * 7.8);
  // Wide characters (CJK) count wider than Latin ones.
  std::string cjk;
  for (int i = 0; i < 60; ++i) cjk += "状";
  EXPECT_GE(svg_width(render_grid_chart_svg(one_cell_grid(cjk))), 60 * 14.0);
  // A short title keeps the minimum width.
  EXPECT_EQ(svg_width(render_grid_chart_svg(one_cell_grid("t"))), 480.0);
}

}  // namespace
}  // namespace slidesparse::report
