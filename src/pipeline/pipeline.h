// `slidesparse prepare-bench`: tasks 3 (coarse tuning) and 4 (fine tuning) through the tuner,
// 5 (simple benchmark), 6 (prefill) and 7 (decode) through benchmark children, one child per
// group (stage, model, precision, backend, pattern) with the group's Ms not yet done. A child that
// dies or hangs ends its case only: the pipeline records that case as failed (Crash / Timeout,
// with the command that reruns it alone) and starts a fresh child for the rest. Resumable: ok and
// skipped cases of this hardware key are not run again; run.json is re-read and updated; an
// interrupted run goes on where it stopped. The child contract is in docs/pipeline.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>

#include "pipeline/plan.h"

namespace slidesparse::pipeline {

// Exit codes of prepare-bench.
inline constexpr int kExitOk = 0;          // the run finished and no case or task failed
inline constexpr int kExitNoGpu = 1;       // as `slidesparse tune` without a GPU
inline constexpr int kExitFailures = 2;    // the run finished with failed cases or tasks
inline constexpr int kExitResumable = 75;  // stopped at the time budget: rerun to resume
// Interrupted by SIGINT / SIGTERM: 128 + the signal.

// The child exit codes of the benchmark contract.
inline constexpr int kChildOk = 0;           // every case ok or skipped
inline constexpr int kChildSomeFailed = 2;   // failed cases, recorded by the child
inline constexpr int kChildStickyFault = 3;  // the failed case recorded, the CUDA context dead

struct PipelineResult {
  int exit_code = kExitOk;
  bool gpu = true;
  bool finished = false;  // run.json has its finish time
  bool stopped_at_budget = false;
  int interrupted_by = 0;  // signal number, 0 when not interrupted
  // Over the planned cases of the benchmark tasks, this hardware key, as the JSONs stand now.
  int64_t ok = 0, failed = 0, skipped = 0, missing = 0;
  int children = 0;  // child processes started by this call
  std::filesystem::path run_json;
};

// Runs (or, with dry_run, prints) the plan. Progress goes to stderr, result lines to `out`, and
// everything to <results>/logs/prepare-bench.log. Throws Error on bad options; does not write
// the report (the CLI does, after this returns).
PipelineResult run_pipeline(const PipelineOptions& options, std::ostream& out);

}  // namespace slidesparse::pipeline
