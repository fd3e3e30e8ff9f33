// `slidesparse bench quant`: bandwidth of the memory-bound kernels of the linear layer (quant,
// quant_slide per pattern, slide, dequant), each timed interleaved with a device-to-device copy
// that moves the same bytes (bytes read + bytes written), so "% of copy" is the figure of merit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cuda/launch_config.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

struct QuantBenchOptions {
  std::vector<int64_t> ms{4096, 16384};
  std::vector<int64_t> ks{2048, 3584, 8192, 18944};  // dequant uses N = K
  std::vector<DType> dtypes{DType::kI8, DType::kFP8E4M3};
  std::vector<Sparsity> sparsities;                               // empty: 2:4, 2:6, 2:8, 2:10
  std::vector<KernelLaunchConfig> configs{KernelLaunchConfig{}};  // each kernel at each config
  int warmup = 10;
  int repeats = 50;
  std::optional<std::filesystem::path> out_dir;  // JSON + CSV go here when set
};

struct QuantBenchRow {
  std::string kernel;   // quant, quant_slide, slide, dequant
  std::string dtype;    // output codes (int8/fp8), bf16 for slide, accumulator for dequant
  std::string pattern;  // Z:L for quant_slide / slide, empty otherwise
  int64_t m = 0;
  int64_t k = 0;              // K (N for dequant)
  int64_t k_out = 0;          // output columns (K' when lifting)
  KernelLaunchConfig config;  // as resolved by the launcher
  int64_t bytes = 0;          // bytes read + bytes written
  int rotation = 1;           // input/output sets cycled through (L2 defeat)
  double median_us = 0;
  double min_us = 0;
  double gbps = 0;
  double copy_median_us = 0;  // cudaMemcpyAsync of bytes / 2, timed interleaved
  double copy_gbps = 0;
  double pct_of_copy = 0;
  double ratio_to_quant = 0;  // quant_slide / quant time (same dtype, config); 0 = n/a
};

// Runs every case, prints a table to `out` as it goes, writes quant_bench.json and
// quant_bench.csv under options.out_dir when set. Needs a GPU.
std::vector<QuantBenchRow> run_quant_bench(const QuantBenchOptions& options, std::ostream& out);

// Writes <dir>/quant_bench.json and <dir>/quant_bench.csv (each through a temporary file).
void write_quant_bench_results(const std::filesystem::path& dir,
                               const std::vector<QuantBenchRow>& rows,
                               const QuantBenchOptions& options);

}  // namespace slidesparse
