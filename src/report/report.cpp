// write_report: load, build the document once, render it twice, write atomically.
#include "report/report.h"

#include <set>
#include <system_error>

#include "io/atomic_file.h"
#include "report/html_writer.h"
#include "report/markdown_writer.h"
#include "report/report_builder.h"
#include "report/results_model.h"

namespace slidesparse::report {

ReportFiles write_report(const std::filesystem::path& results_dir, const ReportOptions& options) {
  const ResultsModel results = load_results(results_dir);
  const Document doc = build_report(results, options.lang);
  const std::filesystem::path out = options.out_dir.empty() ? results_dir : options.out_dir;
  ReportFiles files;
  const MarkdownOutput md = render_markdown(doc, "charts");
  std::set<std::filesystem::path> written;
  for (const auto& [name, svg] : md.charts) {
    const std::filesystem::path path = out / name;
    write_file_atomic(path, svg);
    files.charts.push_back(path);
    written.insert(path.lexically_normal());
  }
  std::error_code ec;
  if (std::filesystem::is_directory(out / "charts", ec))
    for (const auto& e : std::filesystem::directory_iterator(out / "charts", ec))
      if (e.path().extension() == ".svg" && !written.count(e.path().lexically_normal()))
        std::filesystem::remove(e.path(), ec);
  files.markdown = out / "report.md";
  write_file_atomic(files.markdown, md.text);
  files.html = out / "report.html";
  write_file_atomic(files.html, render_html(doc));
  return files;
}

}  // namespace slidesparse::report
