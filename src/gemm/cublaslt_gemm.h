// cuBLASLt dense backend: INT8 -> int32, FP8 E4M3 -> bf16 / fp32 (optionally with outer-vector
// scales and bias fused), BF16 -> bf16 / fp32, in the "TN" form sm_90 requires for 8-bit types
// (W row-major = column-major transposed, x row-major = column-major non-transposed).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "gemm/gemm_op.h"

namespace slidesparse {

GemmSupport cublaslt_supports(const GemmProblem& problem);

// Some epilogues (outer-vector scales, bias) pass plan creation and are refused only by the first
// cublasLtMatmul. This runs the epilogue of `problem` once on a tiny problem of the same dtypes
// (cached per combination) and says whether it runs. make_cublaslt_plan checks it too.
GemmSupport cublaslt_probe_epilogue(const GemmProblem& problem);

// Builds a plan (descriptors + algorithm). nullopt / is_default algorithm: heuristic #0.
// exclusive: run() sets its per-run pointers without a lock (make_exclusive_gemm_plan).
std::shared_ptr<const GemmPlan> make_cublaslt_plan(const GemmProblem& problem,
                                                   const std::optional<GemmAlgorithm>& algorithm,
                                                   bool exclusive = false);

// Up to `max_count` algorithms the heuristic offers for this problem (tuning candidates), with
// cublaslt_heuristic_index set and is_default = false.
std::vector<GemmAlgorithm> cublaslt_heuristic_algorithms(const GemmProblem& problem, int max_count);

}  // namespace slidesparse
