// The report's charts as standalone SVG (inline in the HTML, separate files beside the Markdown):
// line charts of y against M on a log-2 axis with a legend and reference lines, and the pass/fail
// grid. Every point and grid cell carries data-* attributes holding its raw values, so a test can
// check the picture against the tables.
#pragma once

#include <string>

#include "report/report_document.h"

namespace slidesparse::report {

std::string render_line_chart_svg(const LineChart& chart);
std::string render_grid_chart_svg(const GridChart& chart);

}  // namespace slidesparse::report
