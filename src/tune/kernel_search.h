// Launch-configuration search for the memory-bound kernels of the linear layer (quant,
// quant_slide, slide, dequant): time the default launch and every valid (block_threads,
// rows_per_block) pair, keep the fastest whose output equals the default's byte for byte.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>

#include "cuda/resources.h"
#include "slidesparse/sparsity.h"
#include "slidesparse/tuning/tuning_lookup.h"

namespace slidesparse {

// One kernel problem as the layer launches it. cols: K for quant / quant_slide / slide, N for
// dequant. The lookup key is {kernel, compute, sparsity L or 0, cols, m}.
struct KernelJobSpec {
  std::string kernel;  // "quant", "quant_slide", "slide", "dequant"
  DType compute = DType::kI8;
  std::optional<Sparsity> sparsity;  // quant_slide / slide
  int64_t cols = 0;
};
KernelProblemKey kernel_problem_key(const KernelJobSpec& spec, int64_t m);

struct KernelSearchResult {
  KernelLaunchConfig best;  // {} when the default launch won
  double best_us = 0;
  double default_us = 0;
  int tried = 0;
  int mismatched = 0;
};

// Random device buffers for one kernel spec at up to m_max rows, reused across M and configs.
class KernelOperands {
 public:
  KernelOperands(const KernelJobSpec& spec, int64_t m_max, uint64_t seed, cudaStream_t stream);
  const KernelJobSpec& spec() const { return spec_; }
  // Launches the kernel for m rows with `config`, writing output set `which` (0 or 1).
  void launch(int64_t m, KernelLaunchConfig config, int which, cudaStream_t stream);
  // True when output sets 0 and 1 hold the same bytes for m rows.
  bool outputs_equal(int64_t m, cudaStream_t stream) const;

 private:
  int64_t out_bytes(int64_t m) const;
  KernelJobSpec spec_;
  int64_t k_out_ = 0;  // output row length (K_gemm, K' or N)
  DeviceBuffer in_;    // x bf16 [m_max, cols], or the accumulator [m_max, N]
  DeviceBuffer out_[2];
  DeviceBuffer scales_[2];
  DeviceBuffer scale_per_channel_;
  DeviceBuffer bias_;
};

KernelSearchResult search_kernel(KernelOperands& operands, int64_t m, cudaStream_t stream);

}  // namespace slidesparse
