// `slidesparse report RESULTS_DIR [--out DIR] [--lang en|zh]`: writes report.md (charts under
// charts/) and a self-contained report.html from a results folder (src/report/report.h).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "cli/arguments.h"
#include "cli/commands.h"
#include "report/report.h"

namespace slidesparse::cli {
namespace {

struct ReportArgs {
  std::string results_dir, out_dir, lang = "en";
};

void run_report(const ReportArgs& args) {
  report::ReportOptions opt;
  opt.out_dir = args.out_dir;
  opt.lang = report::parse_lang(args.lang);
  if (!args.out_dir.empty()) require_writable_folder("report", "--out", args.out_dir);
  const report::ReportFiles files = report::write_report(args.results_dir, opt);
  std::cout << "report: wrote " << files.markdown.string() << ", " << files.html.string() << " and "
            << files.charts.size() << " chart SVGs\n";
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Write the run's report (report.md + self-contained report.html) from a results folder");
  cmd->add_option("results_dir", args->results_dir,
                  "The results folder (holds run.json, prefill/, decode/, ...)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", args->out_dir, "Output folder (default: the results folder)");
  cmd->add_option("--lang", args->lang, "Language of the report")
      ->capture_default_str()
      ->check(CLI::IsMember({"en", "zh"}));
  cmd->callback([args] { run_report(*args); });
}

}  // namespace slidesparse::cli
