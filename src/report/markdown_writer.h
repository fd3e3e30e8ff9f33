// The report as GitHub-flavoured Markdown. Charts cannot be inline there, so each is returned as
// an SVG file (written beside report.md under charts/) and referenced as an image.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "report/report_document.h"

namespace slidesparse::report {

struct MarkdownOutput {
  std::string text;
  std::vector<std::pair<std::string, std::string>> charts;  // relative file name, SVG
};

MarkdownOutput render_markdown(const Document& doc, const std::string& chart_folder = "charts");

}  // namespace slidesparse::report
