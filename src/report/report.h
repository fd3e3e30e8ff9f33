// `slidesparse report`: the final report of a benchmark run, from its results folder, as
// report.md (charts as SVG files under charts/) and one self-contained report.html. The pipeline
// calls write_report at the end of every run, partial runs included.
#pragma once

#include <filesystem>
#include <vector>

#include "report/i18n.h"

namespace slidesparse::report {

struct ReportOptions {
  std::filesystem::path out_dir;  // empty: the results folder itself
  Lang lang = Lang::kEnglish;
};

struct ReportFiles {
  std::filesystem::path markdown;
  std::filesystem::path html;
  std::vector<std::filesystem::path> charts;  // SVGs referenced by the Markdown
};

// Reads `results_dir` (throws Error when it is not a folder) and writes the report atomically,
// each file whole or not at all; stale chart SVGs of an earlier report in the same folder are
// removed.
ReportFiles write_report(const std::filesystem::path& results_dir, const ReportOptions& options);

}  // namespace slidesparse::report
