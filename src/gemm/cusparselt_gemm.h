// cuSPARSELt 2:4 backend: the weight W' [n, k] is the structured operand A, compressed on the GPU
// once (after the library's own 2:4 check); x [m, k] is the dense operand. INT8 -> int32 / bf16,
// FP8 E4M3 -> fp32 / bf16, BF16 -> bf16; per-channel scale as the alpha vector, bias fused.
// Only compiled when cuSPARSELt is found (callers guard with SLIDESPARSE_HAVE_CUSPARSELT).
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <optional>

#include "cuda/resources.h"
#include "gemm/gemm_op.h"

namespace slidesparse {

// The structured (weight) operand's rows and K must be multiples of this; the dense operand's
// rows (tokens) of kCusparseLtTokenAlign. 8-bit types need 32 / 16 and 16-bit 16 / 8 (cuSPARSELt
// descriptor rules); one value for all dtypes keeps the padding simple.
inline constexpr int64_t kCusparseLtRowAlign = 32;
inline constexpr int64_t kCusparseLtTokenAlign = 32;

GemmSupport cusparselt_supports(const GemmProblem& problem);

std::shared_ptr<const GemmPlan> make_cusparselt_plan(const GemmProblem& problem,
                                                     const std::optional<GemmAlgorithm>& algorithm);

// A compressed 2:4 weight, usable by every plan with the same (dtype, n, k).
struct CompressedWeight {
  DeviceBuffer data;
  DType dtype = DType::kI8;
  int64_t n = 0;
  int64_t k = 0;
};

// Checks that W' (row-major [n, k] in device memory, n % 32 == 0, k % 32 == 0) is 2:4 with
// cusparseLtSpMMAPruneCheck and compresses it. Throws PatternError naming `what` when it is not
// 2:4. Synchronises `stream`.
CompressedWeight compress_sparse_weight(DType dtype, int64_t n, int64_t k, const void* weight,
                                        cudaStream_t stream, const std::string& what);

// Highest CUSPARSELT_MATMUL_ALG_CONFIG_ID for this problem (tuning search range).
int cusparselt_max_alg_config_id(const GemmProblem& problem);

// cuSPARSELt's own search (cusparseLtMatmulSearch, `iterations` runs per candidate) on these
// operands: the algorithm it picks
// (config id, split-K, split-K mode), as a candidate for the tuner. `args.workspace` must hold
// what its candidates need. Throws NotSupportedError / CudaError.
GemmAlgorithm cusparselt_library_search(const GemmProblem& problem, const GemmArgs& args,
                                        int iterations, cudaStream_t stream);

}  // namespace slidesparse
