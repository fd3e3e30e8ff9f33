// `slidesparse prepare-bench`: the whole benchmark run on the GPU at hand (tasks 3-7: coarse and
// fine tuning, simple, prefill and decode benchmarks), isolated per group in child processes,
// resumable across calls, then the report of what the results folder holds (also after a partial
// run). The machinery is src/pipeline; docs/pipeline.md describes the run and its files.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "pipeline/pipeline.h"
#include "report/report.h"
#include "slidesparse/error.h"

namespace slidesparse::cli {
namespace {

struct PrepareBenchArgs {
  pipeline::PipelineOptions options;
  double time_budget_s = 0;
  std::string results_dir = "results";
  std::string tuning_dir;
  std::string runner;
};

// The report is written after every run, also a partial or failed one; a report that cannot be
// made is said, and does not hide the run's own outcome.
bool write_the_report(const std::filesystem::path& results_dir) {
  try {
    const report::ReportFiles files = report::write_report(results_dir, {});
    std::cout << "report: " << files.markdown.string() << ", " << files.html.string() << "\n";
    return true;
  } catch (const std::exception& e) {
    std::cerr << "slidesparse prepare-bench: the report could not be written: " << e.what() << "\n";
    return false;
  }
}

void run_prepare_bench(PrepareBenchArgs& args, bool budget_given) {
  pipeline::PipelineOptions& o = args.options;
  o.results_dir = args.results_dir;
  o.tuning_dir = args.tuning_dir;
  o.runner = args.runner;
  if (budget_given) o.time_budget_s = args.time_budget_s;
  // Test hook: run as if on this GPU (no GPU is touched by the pipeline itself; the runner
  // decides what its children do). Never set it on a real run.
  if (const char* fake = std::getenv("SLIDESPARSE_FAKE_GPU"); fake != nullptr && *fake != '\0') {
    o.hardware = pipeline::parse_fake_gpu(fake);
    std::cerr << "slidesparse prepare-bench: warning: SLIDESPARSE_FAKE_GPU is set: running as if "
                 "on "
              << o.hardware->gpu_name << " (cc " << o.hardware->cc_text() << ")\n";
  }
  pipeline::PipelineResult result;
  try {
    result = pipeline::run_pipeline(o, std::cout);
  } catch (const std::exception&) {
    std::error_code ec;
    if (!o.dry_run && std::filesystem::is_directory(o.results_dir, ec))
      write_the_report(o.results_dir);
    throw;
  }
  if (o.dry_run) return;
  const bool reported = write_the_report(o.results_dir);
  int code = result.exit_code;
  if (code == pipeline::kExitOk && !reported) code = 1;
  if (code != 0) throw CLI::RuntimeError(code);
}

}  // namespace

void add_prepare_bench_command(CLI::App& app) {
  auto args = std::make_shared<PrepareBenchArgs>();
  pipeline::PipelineOptions& o = args->options;
  CLI::App* cmd = app.add_subcommand(
      "prepare-bench",
      "The whole benchmark run: tasks 3 coarse tuning, 4 fine tuning, 5 simple benchmark, "
      "6 prefill, 7 decode; one isolated child per (stage, model, precision, backend) group; "
      "resumable (done cases are not run again); writes the report at the end. Exit codes: 0 "
      "finished, 2 finished with failures, 75 stopped at the time budget (rerun to resume), 1 no "
      "GPU or an error, 128+N interrupted by signal N");
  cmd->add_option("--models", o.models, "model names (models/<name>.json)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--dtype", o.dtypes, "precisions: int8, fp8, bf16")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--backends", o.backends,
                  "cublaslt, cublaslt-fa (FP8 fast accumulation), Z:L patterns, or cusparselt "
                  "(= 2:4,2:6,2:8,2:10)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--tasks", o.tasks, "tasks to run (3 4 5 6 7)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--prefill-M", o.prefill_m, "prefill M list (task 6)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--decode-M", o.decode_m, "decode M list (task 7)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--results", args->results_dir, "results folder")->capture_default_str();
  cmd->add_option("--tuning-dir", args->tuning_dir,
                  "tuning tables root (default: $SLIDESPARSE_TUNING_DIR or the repository's "
                  "tuning/); also given to the benchmarks");
  CLI::Option* budget =
      cmd->add_option("--time-budget", args->time_budget_s,
                      "seconds: no child starts after it; the call ends by the budget plus one "
                      "case timeout, the run left to resume")
          ->check(CLI::PositiveNumber);
  cmd->add_option("--case-timeout", o.case_timeout_s,
                  "seconds one case may run before its process group is killed")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--runner", args->runner,
                  "program run as `<runner> bench ...` / `<runner> tune ...` (default: this one)");
  cmd->add_flag("--dry-run", o.dry_run,
                "print the plan (tasks, groups, cases, commands); run and write nothing");
  cmd->add_flag("--force", o.force,
                "run ok cases again too (a failing rerun goes beside the ok JSON as "
                "<case>.rerun.json); the tuner still skips entries it holds");
  cmd->add_flag("--rerun-other-builds", o.rerun_other_builds,
                "run again the ok cases another build measured (code changed since), as --force "
                "does, and keep the ones this build measured");
  cmd->callback([args, budget]() { run_prepare_bench(*args, budget->count() > 0); });
}

}  // namespace slidesparse::cli
