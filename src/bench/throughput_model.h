// What the prefill / decode benchmarks drive: a model that runs static batches step by step. The
// benchmark logic (src/bench/throughput_bench.h) is written against this interface so it can be
// tested on the CPU with a stub; engine_throughput_model.cpp adapts slidesparse::Engine and is the
// one file of the benchmarks that sees the engine's header.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/gemm/gemm_algorithm.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// What one step did: one sampled token per sequence, in batch order, and the GPU time of the
// step's work (CUDA events, StepResult::gpu_ms).
struct StepOutcome {
  std::vector<int32_t> tokens;
  double gpu_ms = 0;
};

class ThroughputModel {
 public:
  virtual ~ThroughputModel() = default;
  virtual std::string describe() const = 0;  // "Qwen2.5-7B cusparselt 2:8 int8, 28 layers, ..."
  virtual int64_t vocab_size() const = 0;
  // Reserves KV room for max_tokens[b] tokens of sequence b.
  virtual void start_batch(std::span<const int64_t> max_tokens) = 0;
  // One prefill step over every prompt of the batch; one token per sequence.
  virtual StepOutcome prefill(std::span<const std::vector<int32_t>> prompts) = 0;
  // One decode step of every sequence of the batch.
  virtual StepOutcome decode() = 0;
  virtual void end_batch() = 0;
};

// The benchmarks' backend names: "cublaslt" (dense, default accumulation), "cublaslt-fa" (dense,
// cuBLASLt FP8 fast accumulation; the same as cublaslt for INT8 / BF16) and "cusparselt"
// (SlideSparse at a Z:L pattern). The engine's parse_engine_backend takes the same names.
struct BenchBackend {
  std::string name;
  GemmBackend backend = GemmBackend::kCublasLt;
  bool fast_accum = false;
};
// Throws Error naming the accepted values.
BenchBackend parse_bench_backend(std::string_view text);

// Everything one engine of an invocation is built from. The sizes cover every case the
// invocation runs (plan_engine_sizes in throughput_plan.h), so one engine serves all its Ms.
struct EngineSpec {
  std::string model;  // models/<NAME>.json name or a config.json path; random full-size weights
  DType dtype = DType::kI8;
  BenchBackend backend;
  std::optional<Sparsity> sparsity;  // cusparselt only
  Epilogue epilogue = Epilogue::kKernel;
  bool use_tuning = true;
  int64_t max_batch = 1;
  int64_t max_tokens_per_step = 1;
  int64_t kv_cache_tokens = 0;
  int page_size = 16;
};

// Loads the engine of `spec` with random weights (defined in engine_throughput_model.cpp). Throws
// what Engine::load throws: NotSupportedError (FP8 below cc 8.9, no cuSPARSELt),
// OutOfMemoryError, CudaError, Error.
std::unique_ptr<ThroughputModel> make_engine_model(const EngineSpec& spec);

}  // namespace slidesparse
