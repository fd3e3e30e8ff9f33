// The inference engine of the Llama / Qwen2 family on the GPU: weights from a SlideSparse
// checkpoint, a plain HF checkpoint, host weights (tests) or random full-size weights made on the
// GPU; prefill over a ragged batch and decode steps (CUDA graphs per padded batch size) over a
// paged KV cache; greedy sampling on the GPU. Every q/k/v, o, gate/up and down projection is a
// LinearLayer (dense cuBLASLt, or SlideSparse cuSPARSELt at a pattern; INT8, FP8 or BF16); the
// lm_head is dense BF16 and runs only for the sampled positions. The one path `generate`, the
// prefill/decode benchmarks and the tests use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "slidesparse/core/model_ref.h"
#include "slidesparse/core/transformer_config.h"
#include "slidesparse/dtype.h"
#include "slidesparse/gemm/gemm_algorithm.h"
#include "slidesparse/layer/linear.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// Where the weights come from.
struct ModelSource {
  enum class Kind : uint8_t { kRandom, kCheckpoint, kHost };
  Kind kind = Kind::kRandom;
  // kRandom: a model name (models/<NAME>.json) or a config.json path; weights uniform as
  // make_random_ref_weights scales them, drawn on the GPU from `seed`.
  std::string model;
  uint64_t seed = 1;
  // kCheckpoint: a folder with config.json + safetensors (HF BF16/FP16/FP32), or a SlideSparse
  // checkpoint (slidesparse.json beside them: runs on cusparselt at its pattern and precision).
  std::filesystem::path dir;
  // kHost: sizes + weights (tests; bf16-exact float values, already pruned when sparse).
  TransformerConfig config;
  const RefModelWeights* host = nullptr;
  // Layers to build of a kRandom model (0: the config's). Benchmarks keep the config's.
  int64_t layers_override = 0;

  static ModelSource random(std::string name_or_config, uint64_t seed = 1);
  static ModelSource checkpoint(std::filesystem::path dir);
  static ModelSource from_host(const TransformerConfig& config, const RefModelWeights& weights);
};

struct EngineOptions {
  GemmBackend backend = GemmBackend::kCublasLt;
  // cusparselt: the pattern of every linear (required). cublaslt: the pattern the weights are
  // pruned to at load (the dense baseline on the same pruned weights), or none.
  std::optional<Sparsity> sparsity;
  DType compute = DType::kI8;  // kI8, kFP8E4M3 or kBF16
  bool fast_accum = false;     // cuBLASLt FP8 fast accumulation (dense FP8 only)
  // kFused: the library epilogue where it can (the default: cuSPARSELt's fp32 output for the
  // kernel epilogue makes FP8 2:4 slower than dense on the H200, 0.76x at M = 16384 against
  // 1.58x fused). kKernel: the dequant kernel, the CPU reference's exact rounding (tests).
  Epilogue epilogue = Epilogue::kFused;
  bool use_tuning = true;
  // Prune the weights of a checkpoint / random model to `sparsity` at load (true), or check
  // they already follow it (false: PatternError names the tensor when not). Host weights are
  // never pruned.
  bool prune = true;
  int64_t max_batch = 256;              // most sequences in one step
  int64_t max_tokens_per_step = 16384;  // most tokens of one prefill step
  // KV cache: tokens it holds in all (0: sized from the GPU memory left after weights, scratch
  // and graphs, times kv_memory_fraction).
  int64_t kv_cache_tokens = 0;
  double kv_memory_fraction = 0.9;
  int page_size = 16;
  bool cuda_graphs = true;  // decode steps captured per padded batch size and replayed
  // Times every op of eager steps with CUDA events (StepResult::op_ms; decode runs eagerly).
  // Diagnosis only: the events cost a little time of their own.
  bool profile_ops = false;
};

// What one step did.
struct StepResult {
  std::vector<int32_t> tokens;  // one greedy token per sequence, in batch order
  double gpu_ms = 0;            // CUDA events around the step's GPU work
  // Logits [sequences, vocab] of the sampled positions, as float values of the bf16 logits;
  // filled only when asked for.
  std::vector<float> logits;
  // With EngineOptions::profile_ops: milliseconds per op kind summed over the layers, in order
  // ("embedding", "norm+quant", "qkv", "rope+kv", "attention", "o+residual", "gate_up",
  // "swiglu+quant", "down+residual", "final norm", "lm_head", "argmax").
  std::vector<std::pair<std::string, double>> op_ms;
};

struct EngineMemory {
  int64_t weight_bytes = 0;   // linear layers + embedding + norms + lm_head
  int64_t scratch_bytes = 0;  // activations + layer arena + attention workspaces
  int64_t kv_cache_bytes = 0;
  int64_t kv_cache_tokens = 0;
  int64_t device_total_bytes = 0;
  int64_t device_free_bytes = 0;  // after loading
};

class Engine {
 public:
  // Loads the model and sizes everything (layers prepared for every M bucket a step can use,
  // one scratch arena, the KV cache). Throws Error / FormatError naming the tensor for a
  // checkpoint that does not match its config (before anything is allocated on the GPU),
  // NotSupportedError (FP8 below cc 8.9, no cuSPARSELt, a config of another family),
  // OutOfMemoryError naming what was being allocated.
  static std::unique_ptr<Engine> load(const ModelSource& source, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const TransformerConfig& config() const;
  const EngineOptions& options() const;
  const std::string& model_name() const;
  EngineMemory memory() const;
  std::string describe() const;  // "Qwen2.5-7B cusparselt 2:8 int8, 28 layers, KV 1.2M tokens"

  // Starts a batch of sequences, reserving KV pages for `max_tokens[b]` tokens of sequence b
  // (prompt + new tokens). Throws Error before any work when the batch is larger than
  // max_batch or the pages do not fit in the cache (saying how many tokens fit).
  void start_batch(std::span<const int64_t> max_tokens);
  // One prefill step over the prompts of every sequence of the batch (ragged lengths; their sum
  // at most max_tokens_per_step), sampling one token per sequence.
  StepResult prefill(std::span<const std::vector<int32_t>> prompts, bool return_logits = false);
  // One decode step: every sequence takes its last sampled token. Graph-replayed when
  // cuda_graphs (captured at the first step of each padded batch size).
  StepResult decode(bool return_logits = false);
  void end_batch();  // frees the batch's KV pages
  int64_t batch_size() const;
  std::vector<int64_t> sequence_lengths() const;  // tokens in the cache per sequence

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Backend + pattern + dtype as the benchmarks name them ("cublaslt", "cublaslt-fa",
// "cusparselt"); parse_engine_backend throws Error naming the accepted values.
struct EngineBackendChoice {
  GemmBackend backend = GemmBackend::kCublasLt;
  bool fast_accum = false;
};
EngineBackendChoice parse_engine_backend(std::string_view text);
std::string engine_backend_name(const EngineBackendChoice& choice);

}  // namespace slidesparse
