// Run-time lookup into the active tuning table (the one matching this GPU and these library
// versions; see slidesparse/tune/tuning_db.h). Layers and benchmarks call these; nullopt means
// "not tuned here: use the library default / the kernel's default launch".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "slidesparse/gemm/gemm_algorithm.h"

namespace slidesparse {

// Launch configuration of a memory-bound kernel (quant, quant_slide, dequant). Zero = default.
struct KernelLaunchConfig {
  int block_threads = 0;
  int rows_per_block = 0;
  bool operator==(const KernelLaunchConfig&) const = default;
};

struct KernelProblemKey {
  std::string kernel;  // "quant", "quant_slide", "dequant", "slide"
  DType dtype = DType::kI8;
  int block = 4;       // L of the pattern (quant_slide / slide), 0 otherwise
  int64_t cols = 0;    // K for quant kernels, N for dequant
  int64_t m = 0;
};

std::optional<GemmAlgorithm> lookup_tuned_gemm(const GemmProblemKey& key);
std::optional<KernelLaunchConfig> lookup_tuned_kernel(const KernelProblemKey& key);

}  // namespace slidesparse
