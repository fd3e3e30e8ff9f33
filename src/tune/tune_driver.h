// `slidesparse tune`: builds the job list (models x dtypes x patterns x shapes x M), skips what the
// table for this hardware key already holds (unless forced), runs the GEMM and kernel searches
// with a progress bar and ETA on stderr, saves the table as it goes, and reports the files written.
//   coarse: dense cuBLASLt GEMMs + the quant kernel on a short M list;
//   fine:   cuSPARSELt GEMMs (+ the dense GEMM at the same M, for the sparse-beats-dense record),
//           quant_slide / slide and dequant, on the full M list.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/sparsity.h"
#include "tune/gemm_search.h"

namespace slidesparse {

enum class TuneStage { kCoarse, kFine, kAll };
TuneStage parse_tune_stage(std::string_view text);  // "coarse", "fine", "all"; throws Error

// Default M lists: coarse 64, 256, 1024, 4096, 16384, 65536; fine 64, 128, ..., 65536.
std::vector<int64_t> default_coarse_m_list();
std::vector<int64_t> default_fine_m_list();

struct TuneOptions {
  std::vector<std::string> models;  // names (models/<name>.json) or config.json paths
  std::vector<DType> dtypes{DType::kI8, DType::kFP8E4M3};
  std::vector<Sparsity> sparsities;  // default 2:4, 2:6, 2:8, 2:10
  std::vector<int64_t> m_list;       // given: both stages use it; empty: the defaults above
  TuneStage stage = TuneStage::kAll;
  bool force = false;                // re-tune entries the table already holds
  std::filesystem::path tuning_dir;  // root holding one folder per hardware key
  Epilogue epilogue = Epilogue::kKernel;
  GemmSearchOptions gemm;
  bool kernels = true;  // also tune the quant / quant_slide / dequant launches
  // Also tune dense FP8 GEMMs with cuBLASLt fast accumulation (LinearOptions::fast_accum), kept
  // under their own key next to the default-accumulation entries.
  bool fast_accum = false;
};

struct TuneSummary {
  std::vector<std::filesystem::path> files;
  int jobs_total = 0;
  int jobs_run = 0;
  int jobs_skipped = 0;               // done before
  std::vector<std::string> failures;  // "<job>: <reason>"
  double seconds = 0;
};

// Runs the search on the current GPU. Result lines go to `out`, the progress bar to stderr.
// Throws NotSupportedError without a GPU, Error on bad options or an unreadable existing table
// (use force to start it afresh).
TuneSummary run_tuning(const TuneOptions& options, std::ostream& out);

}  // namespace slidesparse
