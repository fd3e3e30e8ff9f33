// Run-time lookup into the active tuning table (the one matching this GPU and these library
// versions; see slidesparse/tuning/tuning_db.h). Layers and benchmarks call these; nullopt means
// "not tuned here: use the library default / the kernel's default launch".
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cuda/launch_config.h"
#include "slidesparse/gemm/gemm_algorithm.h"

namespace slidesparse {

struct KernelProblemKey {
  std::string kernel;  // "quant", "quant_slide", "dequant", "slide"
  DType dtype = DType::kI8;
  int block = 4;     // L of the pattern (quant_slide / slide), 0 otherwise
  int64_t cols = 0;  // K for quant kernels, N for dequant
  int64_t m = 0;
};

std::optional<GemmAlgorithm> lookup_tuned_gemm(const GemmProblemKey& key);
std::optional<KernelLaunchConfig> lookup_tuned_kernel(const KernelProblemKey& key);
// For a sparse (cuSPARSELt) key: whether the tuned sparse GEMM beat the tuned dense one at the
// looked-up M (for dense/sparse dispatch); nullopt when not recorded.
std::optional<bool> lookup_sparse_beats_dense(const GemmProblemKey& sparse_key);

// ---- Which table is active ------------------------------------------------------------------
// By default the table is loaded once per process, at the first lookup, for the current GPU and
// library versions, from $SLIDESPARSE_TUNING_DIR or else the repository's tuning/ folder;
// $SLIDESPARSE_NO_TUNING=1 turns it off. A table from other hardware or versions, or a malformed
// one, is refused with one warning on stderr and the defaults are used.
class TuningTable;  // slidesparse/tuning/tuning_db.h

// The folder searched when nothing else was chosen.
std::filesystem::path default_tuning_dir();
// Use the table for this hardware under `dir` (loaded at the next lookup); `--tuning-dir`.
void set_tuning_dir(const std::filesystem::path& dir);
// No table: every lookup returns nullopt; `--no-tuning`.
void disable_tuning();
// Use this table (tests, the tuner after a search). Throws HardwareMismatchError when a GPU is
// present and the table was made for other hardware or library versions.
void set_active_tuning_table(std::shared_ptr<const TuningTable> table, std::string source);
// Back to the default behaviour above (the next lookup loads again).
void reset_active_tuning();
// The active table (loading it if not done yet); nullptr when none is in use.
std::shared_ptr<const TuningTable> active_tuning_table();
// One line for `slidesparse info`: which table is in use and why, e.g.
// "tuning: tuning/NVIDIA_H100_..._cusparselt800 (412 GEMM, 96 kernel entries)" or
// "tuning: none (no table for <key> under tuning/)".
std::string describe_active_tuning();

}  // namespace slidesparse
