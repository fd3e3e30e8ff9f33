// `slidesparse bench kernel`: for each linear of a model (qkv, o, gate_up, down, fused shapes) and
// each M, the time of quant(_slide), GEMM, dequant and the whole layer, dense (cuBLASLt) and per
// Z:L pattern (SlideSparse on cuSPARSELt), the speed-ups, and the sums over the four linears.
// Dense and sparse are timed interleaved; JSON and CSV out, a table on screen.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

struct KernelBenchOptions {
  std::string model;  // name (models/<name>.json) or path to config.json
  std::vector<DType> dtypes{DType::kI8, DType::kFP8E4M3};
  std::vector<Sparsity> sparsities;  // default 2:4, 2:6, 2:8, 2:10
  std::vector<int64_t> ms{64, 512, 2048, 8192, 16384, 32768};
  Epilogue epilogue = Epilogue::kKernel;
  int warmup = 10;
  int repeats = 50;        // at most; fewer for huge M (see kernel_bench.cpp)
  bool use_tuning = true;  // tuned algorithms where the active table has them
  std::optional<std::filesystem::path>
      out_dir;  // default results/kernel/<GPU>_cc<XY>_<DTYPE>_<tc>/<backend>/
  bool write_files = true;
};

struct StageTimes {
  double quant_ms = 0;
  double gemm_ms = 0;
  double dequant_ms = 0;
  double total_ms = 0;  // the whole forward, timed on its own
};

struct KernelBenchRow {
  std::string linear;  // qkv, o, gate_up, down; "sum" for the sums
  int64_t n = 0, k = 0, m = 0;
  std::string variant;  // "dense" or the pattern "2:8"
  GemmBackend backend = GemmBackend::kCublasLt;
  int64_t gemm_k = 0;
  DType gemm_out = DType::kI32;
  std::string epilogue;       // in effect
  std::string epilogue_note;  // why it differs from the one asked for
  std::string algorithm;      // GemmChoice::describe()
  StageTimes times;
  double speedup_gemm = 0;   // dense GEMM / this GEMM (sparse rows)
  double speedup_total = 0;  // dense layer / this layer
  std::string skipped;       // non-empty: not run, with the reason
};

struct KernelBenchResult {
  std::string model;
  DType dtype = DType::kI8;
  std::string skipped;               // the whole dtype skipped (FP8 below cc 8.9), with the reason
  std::vector<KernelBenchRow> rows;  // per linear, M, variant; then the "sum" rows
};

// Runs the benchmark; prints tables to `out`; writes files unless write_files is false. Throws
// Error on bad options; a dtype the GPU cannot run comes back with `skipped` set.
std::vector<KernelBenchResult> run_kernel_bench(const KernelBenchOptions& options,
                                                std::ostream& out);

}  // namespace slidesparse
