// Where the engine's weights come from, one decoder layer at a time, already on the GPU: random
// full-size weights drawn on the device, host weights (tests), a plain HF checkpoint or a
// SlideSparse checkpoint. Projections arrive fused as the layers run them (q|k|v rows, gate|up
// rows). A checkpoint is checked against its config (every tensor present, shape and dtype) when
// the source is opened, before anything is allocated on the GPU.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cuda/resources.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/transformer_config.h"
#include "slidesparse/engine/engine.h"
#include "slidesparse/layer/linear.h"

namespace slidesparse {

// One fused projection in device memory, before its LinearLayer is built from it.
struct ProjectionOnDevice {
  DeviceBuffer values;  // bf16 [n, k], or codes W' [n, k_slide] when slid
  DeviceBuffer scales;  // float [n] per output channel (codes only)
  DeviceBuffer bias;    // float [n], empty without bias
  DType dtype = DType::kBF16;
  int64_t n = 0, k = 0;
  bool slid = false;

  DeviceWeight weight() const;
  const float* bias_ptr() const { return bias.bytes() ? bias.as<const float>() : nullptr; }
};

struct DecoderLayerOnDevice {
  ProjectionOnDevice qkv, o, gate_up, down;
  std::vector<bf16_t> input_layernorm, post_attention_layernorm;  // [H]
};

// What a SlideSparse checkpoint fixes for the run.
struct SlidCheckpointInfo {
  Sparsity sparsity;
  DType precision = DType::kI8;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const TransformerConfig& config() const = 0;
  virtual const std::string& name() const = 0;
  // Weights arrive pruned to Z:L already (host weights, SlideSparse checkpoints): never pruned.
  virtual bool pruned_already() const { return false; }
  virtual std::optional<SlidCheckpointInfo> slid() const { return std::nullopt; }
  virtual DecoderLayerOnDevice layer(int64_t index, cudaStream_t stream) = 0;
  virtual DeviceBuffer embedding(cudaStream_t stream) = 0;  // bf16 [V, H]
  virtual std::vector<bf16_t> final_norm() = 0;             // [H]
  // bf16 [V, H]; nullopt when the embedding is tied.
  virtual std::optional<DeviceBuffer> lm_head(cudaStream_t stream) = 0;
};

// Opens the source: reads and checks config (and checkpoint headers). Throws Error /
// FormatError naming the file or tensor, NotSupportedError for another model family.
std::unique_ptr<WeightSource> open_weight_source(const ModelSource& source);

}  // namespace slidesparse
