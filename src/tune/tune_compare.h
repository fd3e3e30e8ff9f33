// `slidesparse tune compare`: GEMM-only time of a model's four linears (qkv, o, gate_up, down),
// summed, dense (cuBLASLt) vs SlideSparse (cuSPARSELt) per pattern, each with the tuned algorithm
// of the active table and with the library default, timed back to back (each variant alone)
// AND interleaved (all variants round-robin, so power-cap clock swings hit all alike).
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

struct CompareOptions {
  std::string model;
  std::vector<DType> dtypes{DType::kI8, DType::kFP8E4M3};
  std::vector<Sparsity> sparsities;  // default 2:4, 2:6, 2:8, 2:10
  std::vector<int64_t> m_list{2048, 8192, 16384, 32768};
  Epilogue epilogue = Epilogue::kKernel;
  int warmup = 3;
  int repeats = 25;
  std::filesystem::path out_dir;  // writes <model>_<hardware key>.md / .json; empty: none
};

struct CompareCell {
  std::string variant;  // "dense", "2:8"
  bool tuned = false;
  double back_to_back_us = 0;  // sum of the four GEMMs' medians
  double interleaved_us = 0;
  std::vector<std::string> algorithms;  // per linear, what ran
  DType out_dtype = DType::kI32;
};

struct CompareBlock {
  DType dtype = DType::kI8;
  int64_t m = 0;
  std::vector<CompareCell> cells;  // dense tuned, dense default, then per pattern tuned/default
  std::string skipped;
};

std::vector<CompareBlock> run_tune_compare(const CompareOptions& options, std::ostream& out,
                                           std::vector<std::filesystem::path>* files_written);

}  // namespace slidesparse
