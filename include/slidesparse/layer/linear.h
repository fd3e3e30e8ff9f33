// The linear layer y = x . W^T + b on the GPU (DESIGN.md section 2), dense (`Linear`, cuBLASLt over
// K) and through SlideSparse (`SlideSparseLinear`, quant_slide + cuSPARSELt 2:4 over K'). x and y
// are bf16, row-major, in device memory; weights live on the device from construction on.
// Scratch is the caller's: prepare() the M buckets once (GEMM plans, kernel launch configs),
// size one arena with workspace_bytes(), then forward() / forward_quantized() are const and never
// allocate, synchronise, memset or lock, so a sequence of them can be captured in a CUDA graph.
// Stages (quantize -> gemm -> dequant) stay callable one by one so benchmarks can time each.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

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
  // cuBLASLt FP8 fast accumulation (CUBLASLT_MATMUL_DESC_FAST_ACCUM, as vLLM's FP8 GEMMs run):
  // faster, less accurate. In effect for dense FP8 layers only (fast_accum() says so); ignored
  // by the other dtypes and by SlideSparse (cuSPARSELt has no such option).
  bool fast_accum = false;
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

// A weight already in device memory (random full-size models made on the GPU). The layer pads,
// quantises, slides and compresses it on the GPU (src/kernels/weight_prep.h), bit-equal to the
// same weight given as a HostWeight. The caller keeps ownership; nothing is kept after
// construction.
struct DeviceWeight {
  // kBF16 / kF32 values [n, k], quantised per output channel on the GPU for INT8/FP8 (BF16
  // layers take kBF16 only); kI8 / kFP8E4M3: codes with `scale_per_channel`, dtype == compute.
  DType dtype = DType::kBF16;
  const void* data = nullptr;  // row-major [n, k], or [n, sparsity.k_slide(k)] when `slid`
  int64_t n = 0;
  int64_t k = 0;                             // the layer's K (before sliding)
  bool slid = false;                         // already W' (SlideSparseLinear only)
  const float* scale_per_channel = nullptr;  // device [n], codes only
};

// Caller-owned device memory a forward works in (quantised / lifted activations, per-token
// scales, the GEMM accumulator, the GEMM workspace), carved into aligned pieces inside. One arena
// can serve every layer of a model, one forward at a time (stream order).
struct LinearScratch {
  void* data = nullptr;
  size_t bytes = 0;
};

// Activations a fused producer already quantised (RMSNorm -> quant, SiLU.mul -> quant_slide),
// laid out as launch_quant / launch_quant_slide write them: codes [padded_m(m), gemm_k()]
// row-major (row stride gemm_k(); rows >= m and columns past K zero; lifted for SlideSparse),
// scale_per_token [padded_m(m)] floats (rows >= m zero; null for BF16, whose codes are bf16).
struct QuantizedActivations {
  const void* codes = nullptr;
  const float* scale_per_token = nullptr;
};

// Where a forward writes: y bf16 [m, n] with row stride ld_y (0: n). With a residual (bf16
// [m, n], row stride ld_residual, 0: n), y = residual + layer(x) in one bf16 rounding for the
// kernel epilogue: y = bf16(float(residual) + ((acc * s_x) * s_w + b)). The residual may be y
// itself (same row stride) and must not overlap it otherwise.
struct LinearOutput {
  void* y = nullptr;
  int64_t ld_y = 0;
  const void* residual = nullptr;
  int64_t ld_residual = 0;
};

// Which GEMM algorithm runs at a given M, and whether it came from the tuning table.
struct GemmChoice {
  GemmAlgorithm algorithm;
  bool tuned = false;   // from the active tuning table
  bool forced = false;  // LinearOptions::algorithm
  DType out_dtype = DType::kI32;
  std::string describe() const;  // "default (cfg 0)" / "tuned: cfg 3 split-k 2"
};

// The raw GEMM output of the last gemm() into a scratch (kKernel epilogue, or the bf16
// intermediate of the fused paths): row-major [rows, ld] inside the scratch, rows >= m padding.
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
  // Why the epilogue in effect differs from the one asked for, and what a residual changes where
  // the library epilogue writes y ("" when nothing).
  const std::string& epilogue_note() const { return epilogue_note_; }
  // Whether cuBLASLt FP8 fast accumulation is in effect (LinearOptions::fast_accum).
  bool fast_accum() const { return fast_accum_; }
  // GEMM K as the library sees it (K padded for dense, K' for SlideSparse): the columns of the
  // codes forward_quantized() reads. And the padded output-feature count.
  int64_t gemm_k() const { return k_gemm_; }
  int64_t gemm_n() const { return n_gemm_; }
  // Tokens as the GEMM sees exactly `m` rows (padded to the library's multiple); no buckets.
  int64_t gemm_m(int64_t m) const;
  std::string describe() const;  // "SlideSparse 2:8 int8 n=4608 k=3584 (K'=5376) epilogue=fused"

  // Resolves, for each M bucket (added to those already prepared), the GEMM plan (the tuned
  // algorithm or the default; the default with a warning when the library refuses a tuned one)
  // and the kernel launch configurations from the tuning table. An M runs at the smallest
  // prepared bucket that holds it. Not thread-safe against forwards in flight on other threads.
  // Throws NotSupportedError (library refuses even the default), Error (M < 1).
  void prepare(std::span<const int64_t> m_buckets);
  void prepare(int64_t m_bucket) { prepare(std::span<const int64_t>(&m_bucket, 1)); }
  const std::vector<int64_t>& prepared_buckets() const;
  // The bucket M runs at / the rows the GEMM reads for M (the bucket's padded M). Throw Error
  // naming the layer and the prepared buckets when M is above all of them.
  int64_t bucket(int64_t m) const;
  int64_t padded_m(int64_t m) const;
  // Scratch bytes forward() / forward_quantized() need for any M <= m_max (throws as bucket()).
  size_t workspace_bytes(int64_t m_max) const;
  GemmChoice gemm_choice(int64_t m) const;  // of the bucket M runs at

  // y (+ residual) = x[m, k] (bf16, row stride k) . W^T + b. Const; never allocates,
  // synchronises, memsets or locks (cuBLASLt plans with per-run pointers are the layer's own,
  // so run one layer's forwards from one host thread at a time). Throws Error for an M above
  // every prepared bucket, a scratch smaller than workspace_bytes(m), null pointers.
  void forward(cudaStream_t stream, const void* x, int64_t m, const LinearOutput& out,
               LinearScratch scratch) const;
  // The same from activations a fused kernel already quantised (see QuantizedActivations).
  void forward_quantized(cudaStream_t stream, const QuantizedActivations& x, int64_t m,
                         const LinearOutput& out, LinearScratch scratch) const;

  // The three stages of forward, in order, on the same stream and scratch (what `bench kernel`
  // times). gemm() takes x because dense BF16 with aligned K reads x itself at a bucket's M.
  void quantize(cudaStream_t stream, const void* x, int64_t m, LinearScratch scratch) const;
  void gemm(cudaStream_t stream, const void* x, int64_t m, const LinearOutput& out,
            LinearScratch scratch) const;
  void dequant(cudaStream_t stream, int64_t m, const LinearOutput& out,
               LinearScratch scratch) const;

  AccumulatorView accumulator(int64_t m, LinearScratch scratch) const;
  // Per-token scales quantize() wrote into `scratch` (INT8/FP8), [padded_m(m)]; null for BF16.
  const float* scale_per_token(int64_t m, LinearScratch scratch) const;
  size_t device_bytes() const;  // weights, scales and bias held (scratch is the caller's)

 protected:
  struct Impl;
  LinearLayer(const HostWeight& weight, std::span<const float> bias, LinearOptions options,
              std::optional<Sparsity> sparsity);
  LinearLayer(const DeviceWeight& weight, const float* device_bias, LinearOptions options,
              std::optional<Sparsity> sparsity, cudaStream_t stream);

 private:
  struct Bucket;
  struct ScratchLayout;
  void init_layout(int64_t n, int64_t k, bool has_bias, const char* what);
  const Bucket& bucket_for(int64_t m) const;
  ScratchLayout layout_for(const Bucket& b) const;
  const void* run_gemm(cudaStream_t stream, const Bucket& b, const void* operand,
                       const float* scale_per_token, int64_t m, const LinearOutput& out,
                       LinearScratch scratch) const;
  void run_epilogue(cudaStream_t stream, const Bucket& b, const float* scale_per_token, int64_t m,
                    const LinearOutput& out, LinearScratch scratch) const;

  int64_t n_ = 0, k_ = 0, n_gemm_ = 0, k_gemm_ = 0;
  LinearOptions options_;
  GemmBackend backend_ = GemmBackend::kCublasLt;
  std::optional<Sparsity> sparsity_;
  Epilogue epilogue_ = Epilogue::kKernel;
  std::string epilogue_note_;
  bool fast_accum_ = false;
  std::unique_ptr<Impl> impl_;
};

// Dense baseline: quant -> cuBLASLt over K -> dequant.
class Linear : public LinearLayer {
 public:
  Linear(const HostWeight& weight, std::span<const float> bias, LinearOptions options);
  // device_bias: [n] floats in device memory, or null. Synchronises `stream`.
  Linear(const DeviceWeight& weight, const float* device_bias, LinearOptions options,
         cudaStream_t stream = nullptr);
};

// SlideSparse: quant_slide -> cuSPARSELt 2:4 over K' (W' compressed on the GPU here) -> dequant.
// Throws PatternError when the weight is not Z:L (or, given slid codes, W' is not 2:4), and
// NotSupportedError when the build has no cuSPARSELt.
class SlideSparseLinear : public LinearLayer {
 public:
  SlideSparseLinear(const HostWeight& weight, Sparsity sparsity, std::span<const float> bias,
                    LinearOptions options);
  SlideSparseLinear(const DeviceWeight& weight, Sparsity sparsity, const float* device_bias,
                    LinearOptions options, cudaStream_t stream = nullptr);
};

}  // namespace slidesparse
