// The linear layer y = x . W^T + b on the GPU (DESIGN.md section 2), dense (`Linear`, cuBLASLt over
// K) and through SlideSparse (`SlideSparseLinear`, quant_slide + cuSPARSELt 2:4 over K'). x and y
// are bf16, row-major, in device memory; weights live on the device from construction on.
// Stages (quantize -> gemm -> dequant) are callable one by one so benchmarks can time each;
// forward() runs all three. Workspaces grow on demand and are kept: once prepare(M_max) has run,
// forward() for any M <= M_max allocates and creates nothing.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "slidesparse/dtype.h"
#include "slidesparse/gemm/gemm_algorithm.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

class GemmPlan;  // src/gemm/gemm_op.h

// Where the per-token / per-channel scales and the bias are applied.
//   kKernel: the GEMM writes its raw accumulator (INT8 int32, FP8 fp32, BF16 bf16) and the dequant
//            kernel applies everything.
//   kFused:  the library epilogue takes what it can (cuBLASLt FP8: both scale vectors + bias, no
//            dequant kernel; cuBLASLt BF16 and cuSPARSELt BF16: bias; cuSPARSELt INT8: the
//            per-channel scale as alpha vector, bf16 output, then a lighter kernel applies the
//            per-token scale + bias; cuSPARSELt FP8 has no alpha vector: bf16 output, the kernel
//            applies both scales + bias). cuBLASLt INT8 has no such epilogue and runs kKernel;
//            cuBLASLt FP8 runs kKernel where the library refuses outer-vector scales (sm_90 with
//            cuBLAS 13.0). epilogue() / epilogue_note() say what is in effect.
enum class Epilogue : uint8_t { kKernel, kFused };
std::string_view epilogue_name(Epilogue epilogue);  // "kernel", "fused"
Epilogue parse_epilogue(std::string_view text);     // throws Error

struct LinearOptions {
  DType compute = DType::kI8;  // kI8, kFP8E4M3 or kBF16
  Epilogue epilogue = Epilogue::kKernel;
  bool use_tuning = true;  // look GEMM algorithms and kernel launches up in the active table
  // Forces one GEMM algorithm for every M (the tuner, tests); overrides the table.
  std::optional<GemmAlgorithm> algorithm;
};

// A weight on the host, in one of the forms the converter hands over.
struct HostWeight {
  // kF32 / kBF16: full precision [n, k], quantised per output channel here for INT8/FP8 (as
  // core/quant.h). kI8 / kFP8E4M3: codes with `scale_per_channel`, dtype == the compute dtype.
  DType dtype = DType::kF32;
  const void* data = nullptr;  // row-major [n, k], or [n, sparsity.k_slide(k)] when `slid`
  int64_t n = 0;
  int64_t k = 0;                             // the layer's K (before sliding)
  bool slid = false;                         // codes already W' (SlideSparseLinear only)
  std::span<const float> scale_per_channel;  // [n], codes only
};

// Which GEMM algorithm runs at a given M, and whether it came from the tuning table.
struct GemmChoice {
  GemmAlgorithm algorithm;
  bool tuned = false;   // from the active tuning table
  bool forced = false;  // LinearOptions::algorithm
  DType out_dtype = DType::kI32;
  std::string describe() const;  // "default (cfg 0)" / "tuned: cfg 3 split-k 2"
};

// The raw GEMM output of the last gemm() call (kKernel epilogue, or the bf16 intermediate of the
// fused sparse path): row-major [m_gemm, ld] in device memory, rows >= m are padding.
struct AccumulatorView {
  const void* data = nullptr;
  DType dtype = DType::kI32;
  int64_t rows = 0;
  int64_t ld = 0;
};

class LinearLayer {
 public:
  ~LinearLayer();
  LinearLayer(LinearLayer&&) noexcept;
  LinearLayer& operator=(LinearLayer&&) noexcept;
  LinearLayer(const LinearLayer&) = delete;
  LinearLayer& operator=(const LinearLayer&) = delete;

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  DType compute() const { return options_.compute; }
  GemmBackend backend() const { return backend_; }
  std::optional<Sparsity> sparsity() const { return sparsity_; }
  // The epilogue in effect (kFused asked of cuBLASLt INT8 gives kKernel).
  Epilogue epilogue() const { return epilogue_; }
  // Why the epilogue in effect differs from the one asked for ("" when it does not).
  const std::string& epilogue_note() const { return epilogue_note_; }
  // GEMM K as the library sees it (K padded for dense 8-bit, K' for SlideSparse) and the padded
  // output-feature count.
  int64_t gemm_k() const { return k_gemm_; }
  int64_t gemm_n() const { return n_gemm_; }
  // Tokens as the GEMM sees them for `m` rows (padded to the library's multiple).
  int64_t gemm_m(int64_t m) const;
  std::string describe() const;  // "SlideSparse 2:8 int8 n=4608 k=3584 (K'=5376) fused"

  // Makes the plan for `m` and grows the workspaces to fit; forward() for M <= m is then free of
  // allocations. Throws NotSupportedError / OutOfMemoryError.
  void prepare(int64_t m);
  GemmChoice gemm_choice(int64_t m);

  // y[m, n] (bf16, row stride n) = x[m, k] (bf16, row stride k) . W^T + b.
  void forward(cudaStream_t stream, const void* x, int64_t m, void* y);
  // The three stages of forward, in order, on the same stream.
  void quantize(cudaStream_t stream, const void* x, int64_t m);
  void gemm(cudaStream_t stream, int64_t m, void* y);
  void dequant(cudaStream_t stream, int64_t m, void* y);

  AccumulatorView accumulator(int64_t m) const;
  // Per-token scales written by quantize() (INT8/FP8), [m] floats on the device; null for BF16.
  const float* scale_per_token() const;
  size_t device_bytes() const;  // weights + workspaces held

 protected:
  struct Impl;
  LinearLayer(const HostWeight& weight, std::span<const float> bias, LinearOptions options,
              std::optional<Sparsity> sparsity);

 private:
  int64_t n_ = 0, k_ = 0, n_gemm_ = 0, k_gemm_ = 0;
  LinearOptions options_;
  GemmBackend backend_ = GemmBackend::kCublasLt;
  std::optional<Sparsity> sparsity_;
  Epilogue epilogue_ = Epilogue::kKernel;
  std::string epilogue_note_;
  std::unique_ptr<Impl> impl_;
};

// Dense baseline: quant -> cuBLASLt over K -> dequant.
class Linear : public LinearLayer {
 public:
  Linear(const HostWeight& weight, std::span<const float> bias, LinearOptions options);
};

// SlideSparse: quant_slide -> cuSPARSELt 2:4 over K' (W' compressed on the GPU here) -> dequant.
// Throws PatternError when the weight is not Z:L (or, given slid codes, W' is not 2:4), and
// NotSupportedError when the build has no cuSPARSELt.
class SlideSparseLinear : public LinearLayer {
 public:
  SlideSparseLinear(const HostWeight& weight, Sparsity sparsity, std::span<const float> bias,
                    LinearOptions options);
};

}  // namespace slidesparse
