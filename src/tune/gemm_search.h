// The GEMM algorithm search of `slidesparse tune`: for one problem (as a LinearLayer would run it)
// time the library default and every candidate (cuBLASLt heuristic results; cuSPARSELt config
// ids x {none, Segment-K on sm_90}, then split-K 2/4/8 on the best configs, and the library's own
// cusparseLtMatmulSearch pick), screen each by the median of several runs on L2-rotated inputs,
// re-time the finalists interleaved with the default, and keep the fastest whose output matches
// the default's.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuda/resources.h"
#include "gemm/gemm_op.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// What a LinearLayer of this kind runs its GEMM as (mirrors LinearLayer::prepare(): padding,
// output dtype, epilogue flags), so the tuner times and stores exactly what the layer looks up.
struct LayerGemmSpec {
  DType compute = DType::kI8;
  std::optional<Sparsity> sparsity;  // none: dense cuBLASLt over K
  int64_t n = 0;                     // layer N
  int64_t k = 0;                     // layer K (before sliding)
  Epilogue epilogue = Epilogue::kKernel;
  bool fast_accum = false;  // LinearOptions::fast_accum (in effect for dense FP8 only)
};
GemmProblem layer_gemm_problem(const LayerGemmSpec& spec, int64_t m);

struct GemmSearchOptions {
  int heuristic_count = 32;  // cuBLASLt candidates asked of the heuristic
  std::vector<int> split_k = {2, 4, 8};
  bool segment_k = true;              // cuSPARSELt Segment-K (split_k = -1), sm_90 only
  int split_k_top = 3;                // best configs whose split-K variants are tried
  int screen_runs = 5;                // screening: median of at least this many timed runs
  int finalists = 8;                  // candidates re-timed against the default
  int final_runs = 25;                // re-time: at least this many interleaved rounds
  bool library_search = true;         // cuSPARSELt: also cusparseLtMatmulSearch's pick
  double drop_factor = 3.0;           // a candidate whose first run is this much slower than
                                      // the default is not timed further,
  double drop_vs_best = 1.25;         // nor one this much slower than the best median so far
  int library_search_iterations = 3;  // runs per candidate inside cusparseLtMatmulSearch
  size_t max_workspace_bytes = size_t{4} << 30;
};

struct GemmCandidateResult {
  GemmAlgorithm algorithm;
  double us = 0;  // median
};

struct GemmSearchResult {
  GemmAlgorithm best;  // is_default when the library default won
  double best_us = 0;
  double default_us = 0;
  int tried = 0;       // candidates that ran
  int refused = 0;     // plan refused by the library (skipped)
  int mismatched = 0;  // finalists whose output differed from the default's (dropped)
  std::optional<GemmAlgorithm> library_pick;  // cusparseLtMatmulSearch's choice, when it ran
  std::vector<GemmCandidateResult> finals;    // finalists, default first
};

// Random device operands for one GEMM shape (backend, dtypes, n, k) at up to m_max tokens, made
// once and reused for every M and candidate; the sparse weight is a random 2:4 matrix compressed
// by cuSPARSELt.
class GemmOperands {
 public:
  // with_outputs = false: no output buffers (the caller passes its own `d` to args()).
  GemmOperands(const GemmProblem& shape, int64_t m_max, uint64_t seed, cudaStream_t stream,
               bool with_outputs = true);
  // Arguments for running `problem` (same shape, m <= m_max) writing into `d`. `slot` picks one
  // of rotation_slots(problem) disjoint token ranges of x (and of d when it is the operands' own
  // output), so consecutive timed runs do not find their input in L2.
  GemmArgs args(const GemmProblem& problem, void* d, int slot = 0) const;
  int rotation_slots(const GemmProblem& problem) const;
  void* d() const { return d_.get(); }
  void* d_reference() const { return d_reference_.get(); }
  DeviceBuffer& workspace() { return workspace_; }

 private:
  GemmProblem shape_;
  int64_t m_max_ = 0;
  DeviceBuffer weight_;  // dense [n, k] or compressed W'
  DeviceBuffer x_;       // [m_max, k]
  DeviceBuffer d_;       // [m_max, n]
  DeviceBuffer d_reference_;
  DeviceBuffer scale_per_channel_;
  DeviceBuffer scale_per_token_;
  DeviceBuffer workspace_;
};

// The first-pass candidates for `problem` (cuSPARSELt: every config id the library reports, each
// also with Segment-K on sm_90; cuBLASLt: the heuristic's list). Throws NotSupportedError.
std::vector<GemmAlgorithm> first_pass_candidates(const GemmProblem& problem,
                                                 const GemmSearchOptions& options);

// Runs the search. Throws NotSupportedError when even the default plan is refused.
GemmSearchResult search_gemm(const GemmProblem& problem, GemmOperands& operands,
                             const GemmSearchOptions& options, cudaStream_t stream);

// Median time in microseconds of `plan` over `reps` runs after `warmup` runs (CUDA events).
double time_gemm_us(const GemmPlan& plan, const GemmArgs& args, int warmup, int reps,
                    cudaStream_t stream);

}  // namespace slidesparse
