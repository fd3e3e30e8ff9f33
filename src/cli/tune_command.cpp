// `slidesparse tune`: offline search of GEMM algorithms and kernel launch configurations for
// this GPU, stored in the tuning table that layers and benchmarks then use automatically.
// `slidesparse tune compare`: tuned vs untuned, dense vs SlideSparse GEMM sums for a model.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/arguments.h"
#include "cli/commands.h"
#include "io/model_config.h"
#include "io/progress.h"
#include "slidesparse/engine/engine.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/tuning/tuning_lookup.h"
#include "tune/tune_compare.h"
#include "tune/tune_driver.h"

namespace slidesparse::cli {
namespace {

struct TuneArgs {
  std::vector<std::string> models;
  std::vector<std::string> dtypes{"int8", "fp8"};
  std::vector<std::string> sparsities{"2:4", "2:6", "2:8", "2:10"};
  std::vector<int64_t> ms;
  std::string stage = "all";
  bool force = false;
  std::string tuning_dir;
  // The engine's (so the benchmarks') default: the epilogue decides the GEMM output type, which is
  // part of the tuning key, so a table tuned for another epilogue would not be found.
  std::string epilogue{epilogue_name(EngineOptions{}.epilogue)};
  bool no_kernels = false;
  bool fast_accum = false;
  int heuristic_count = 32;
  // compare
  std::string out_dir;
  int repeats = 25;
  int warmup = 3;
};

std::vector<DType> parse_dtypes(std::string_view command, const std::vector<std::string>& names) {
  return parse_dtype_options(command, "--dtype", names,
                             {DType::kI8, DType::kFP8E4M3, DType::kBF16});
}

void add_common(CLI::App* app, TuneArgs& a) {
  app->add_option("--dtype", a.dtypes, "int8, fp8, bf16 (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--sparsity", a.sparsities, "Z:L patterns, e.g. 2:4,2:6,2:8,2:10")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--tuning-dir", a.tuning_dir,
                  "folder holding one table folder per hardware key (default: "
                  "$SLIDESPARSE_TUNING_DIR or the repository's tuning/)");
  app->add_option("--epilogue", a.epilogue,
                  "kernel (GEMM writes the raw accumulator) or fused (library epilogue)")
      ->capture_default_str();
}

void run_tune(const TuneArgs& a) {
  TuneOptions o;
  o.models = a.models;
  o.dtypes = parse_dtypes("tune", a.dtypes);
  o.sparsities = parse_sparsities(a.sparsities);
  o.m_list = a.ms;
  o.stage = parse_tune_stage(a.stage);
  o.force = a.force;
  o.tuning_dir = a.tuning_dir.empty() ? default_tuning_dir() : std::filesystem::path(a.tuning_dir);
  require_writable_folder("tune", "--tuning-dir", o.tuning_dir);
  o.epilogue = parse_epilogue(a.epilogue);
  o.kernels = !a.no_kernels;
  o.fast_accum = a.fast_accum;
  o.gemm.heuristic_count = a.heuristic_count;
  const TuneSummary s = run_tuning(o, std::cout);
  std::cout << "\nsummary: " << s.jobs_run << " jobs run, " << s.jobs_skipped
            << " done before (skipped), " << s.failures.size() << " failed, in "
            << ProgressBar::format_seconds(s.seconds) << "\n";
  if (s.files.empty()) {
    std::cout << "files written: none\n";
  } else {
    std::cout << "files written:\n";
    for (const auto& f : s.files) std::cout << "  " << f.string() << "\n";
  }
  if (!s.failures.empty()) {
    std::cout << "failures:\n";
    for (const auto& f : s.failures) std::cout << "  " << f << "\n";
  }
}

void run_compare(const TuneArgs& a) {
  // Every argument of every model first: a bad last model must not end a long run midway.
  const std::vector<DType> dtypes = parse_dtypes("tune compare", a.dtypes);
  const std::vector<Sparsity> sparsities = parse_sparsities(a.sparsities);
  const Epilogue epilogue = parse_epilogue(a.epilogue);
  for (const auto& model : a.models) resolve_model(model);
  if (!a.out_dir.empty()) require_writable_folder("tune compare", "--out", a.out_dir);
  if (!a.tuning_dir.empty()) set_tuning_dir(a.tuning_dir);
  for (const auto& model : a.models) {
    CompareOptions o;
    o.model = model;
    o.dtypes = dtypes;
    o.sparsities = sparsities;
    if (!a.ms.empty()) o.m_list = a.ms;
    o.epilogue = epilogue;
    o.repeats = a.repeats;
    o.warmup = a.warmup;
    o.out_dir = a.out_dir;
    std::vector<std::filesystem::path> files;
    run_tune_compare(o, std::cout, &files);
    for (const auto& f : files) std::cout << "wrote " << f.string() << "\n";
  }
}

}  // namespace

void add_tune_command(CLI::App& app) {
  auto args = std::make_shared<TuneArgs>();
  CLI::App* tune = app.add_subcommand(
      "tune",
      "search GEMM algorithms (cuBLASLt, cuSPARSELt) and kernel launches for this GPU and store "
      "them in the tuning table (coarse: dense GEMM + quant on a short M list; fine: sparse GEMM "
      "with split-K / Segment-K, quant_slide, dequant on the full M list)");
  // Not ->required(): `tune compare` has its own --models (run_tuning checks it is given).
  tune->add_option("--models", args->models,
                   "model names (models/<name>.json) or config.json paths")
      ->delimiter(',');
  add_common(tune, *args);
  tune->add_option("--M", args->ms,
                   "token counts (default: coarse 64,256,...,65536; fine 64..65536)")
      ->delimiter(',');
  tune->add_option("--stage", args->stage, "coarse, fine or all")->capture_default_str();
  tune->add_flag("--force", args->force, "re-tune entries the table already holds");
  tune->add_flag("--no-kernels", args->no_kernels, "GEMMs only (skip kernel launch tuning)");
  tune->add_flag("--fast-accum", args->fast_accum,
                 "also tune dense FP8 GEMMs with cuBLASLt fast accumulation (cublaslt-fa)");
  tune->add_option("--heuristic-count", args->heuristic_count,
                   "cuBLASLt heuristic candidates to time")
      ->capture_default_str();

  auto cargs = std::make_shared<TuneArgs>();
  CLI::App* compare = tune->add_subcommand(
      "compare",
      "GEMM-only sums of a model's four linears: tuned and untuned, dense vs SlideSparse, timed "
      "back to back and interleaved");
  compare->add_option("--models", cargs->models, "model names or config.json paths")
      ->delimiter(',')
      ->required();
  add_common(compare, *cargs);
  cargs->ms = {2048, 8192, 16384, 32768};
  compare->add_option("--M", cargs->ms, "token counts")->delimiter(',')->capture_default_str();
  compare->add_option("--out", cargs->out_dir, "folder for the .md/.json results (default: none)");
  compare->add_option("--repeats", cargs->repeats, "timed runs per GEMM")->capture_default_str();
  compare->add_option("--warmup", cargs->warmup, "warm-up runs per GEMM")->capture_default_str();
  compare->callback([cargs]() { run_compare(*cargs); });

  tune->callback([compare, args]() {
    if (compare->parsed()) return;
    run_tune(*args);
  });
}

}  // namespace slidesparse::cli
