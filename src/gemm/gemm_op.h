// One interface over the two GEMM libraries, CUTLASS-style: supports(problem) -> plan(problem,
// algorithm) -> workspace_size -> run(args, stream). Plans are cached process-wide per (problem,
// algorithm) and hold every handle and descriptor, so running one allocates and creates nothing.
// Orientation: D[m, n] = x[m, k] . W[n, k]^T, all row-major (the library sees the column-major
// product D^T[n, m] = W . x^T, "TN"); W is the weight (sparse: the compressed 2:4 W').
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/gemm/gemm_algorithm.h"

namespace slidesparse {

struct GemmProblem {
  GemmBackend backend = GemmBackend::kCublasLt;
  DType dtype = DType::kI8;       // operands: kI8, kFP8E4M3, kBF16
  DType out_dtype = DType::kI32;  // D: kI32 (INT8 only), kF32, kBF16
  int64_t n = 0;                  // weight rows / output features, as the GEMM sees them
  int64_t k = 0;                  // reduction length (K padded, or K' for the sparse backend)
  int64_t m = 0;                  // tokens, as the GEMM sees them (padded)
  int64_t ld_x = 0;               // row stride of x in elements (0: k)
  int64_t ld_d = 0;               // row stride of D in elements (0: n)
  // Library epilogue. scale_per_channel: D[., j] *= s_w[j] (cuBLASLt outer-vector scale of A,
  // FP8 only; cuSPARSELt alpha vector). scale_per_token: D[i, .] *= s_x[i] (cuBLASLt FP8 only).
  // bias: D[., j] += bias[j] after the scales, bias in out_dtype.
  bool scale_per_channel = false;
  bool scale_per_token = false;
  bool bias = false;
  // cuSPARSELt reads the bias pointer when the plan is made, so a fused-bias sparse plan is made
  // for one bias buffer (part of the cache key); ignored by cuBLASLt, which takes it per run.
  const void* sparse_bias = nullptr;
  // cuBLASLt FP8 only: CUBLASLT_MATMUL_DESC_FAST_ACCUM (no periodic promotion of the tensor
  // cores' limited-precision partial sums to fp32; faster, less accurate).
  bool fast_accum = false;

  int64_t x_stride() const { return ld_x > 0 ? ld_x : k; }
  int64_t d_stride() const { return ld_d > 0 ? ld_d : n; }
  std::string describe() const;  // "cublaslt int8->int32 n=4608 k=3584 m=512 +bias +fast_accum"
  bool operator==(const GemmProblem&) const = default;
};

// Pointers for one run. Device memory; scale vectors are float, bias is in out_dtype.
struct GemmArgs {
  const void* weight = nullptr;              // dense: W [n, k] row-major; sparse: compressed W'
  const void* x = nullptr;                   // [m, ld_x]
  void* d = nullptr;                         // [m, ld_d]
  const float* scale_per_channel = nullptr;  // [n]
  const float* scale_per_token = nullptr;    // [m]
  const void* bias = nullptr;                // [n]
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// supports(): the answer and, when no, why (a benchmark prints it as a skip reason).
struct GemmSupport {
  bool supported = false;
  std::string reason;
  explicit operator bool() const { return supported; }
};

class GemmPlan {
 public:
  virtual ~GemmPlan() = default;
  virtual const GemmProblem& problem() const = 0;
  // The algorithm actually used (for the library default: what the library picked, with
  // is_default = true).
  virtual const GemmAlgorithm& algorithm() const = 0;
  virtual size_t workspace_size() const = 0;
  // Enqueues the GEMM on `stream`. Throws CudaError on a library failure, Error on bad args.
  virtual void run(const GemmArgs& args, cudaStream_t stream) const = 0;
};

// Static check of what the backend can do (dtype pairs, layouts, alignment). A plan can still
// be refused by the library itself; get_gemm_plan turns that into NotSupportedError.
GemmSupport supports(const GemmProblem& problem);

// The cached plan for (problem, algorithm); nullopt algorithm = the library default. Throws
// NotSupportedError (not supported here: the problem, this GPU, this build or this algorithm)
// or CudaError (the library failed). Thread-safe.
std::shared_ptr<const GemmPlan> get_gemm_plan(const GemmProblem& problem,
                                              const std::optional<GemmAlgorithm>& algorithm);
// A plan of the caller's own, not cached and not shared. Plans whose run() must set per-run
// pointers in the library descriptor (cuBLASLt scale vectors, bias) serialise run() with a lock
// when shared; an exclusive plan does not, so its owner runs it from one thread at a time (a
// LinearLayer's forward, which must not lock). Otherwise the same plan as get_gemm_plan makes
// for (problem, algorithm). Throws as get_gemm_plan.
std::shared_ptr<const GemmPlan> make_exclusive_gemm_plan(
    const GemmProblem& problem, const std::optional<GemmAlgorithm>& algorithm);
// Whether run() of a plan for this problem sets per-run pointers in a descriptor (see above).
bool gemm_plan_has_run_pointers(const GemmProblem& problem);

// Drops every cached plan (tests; the tuner between searches). Plans in use stay alive.
void clear_gemm_plan_cache();
size_t gemm_plan_cache_size();

// The argument checks every backend's run() starts with: non-null weight, x and d; enough
// workspace for the plan; a per-channel scale pointer when the plan fuses that scale. Throws
// Error naming `backend` and the problem.
void check_common_gemm_args(const char* backend, const GemmProblem& problem, const GemmArgs& args,
                            size_t workspace_bytes);

// The lookup key the tuning table is indexed by, for this problem.
GemmProblemKey gemm_problem_key(const GemmProblem& problem);

}  // namespace slidesparse
