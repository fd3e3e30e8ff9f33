// `slidesparse make-model`: a random Hugging Face-format checkpoint of the Llama / Qwen2 family
// (config.json with the layer count changed, model.safetensors or shards + index), for tests and
// demos where no hub is reachable. Optionally pre-pruned to Z:L, or stored as a compressed-tensors
// W8A8 checkpoint (int8 / fp8 linear weights with F32 [N, 1] weight_scale).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

struct MakeModelOptions {
  std::string config;  // config.json path, model directory, or a known model name
  int64_t layers = 0;  // 0: keep the config's num_hidden_layers
  std::filesystem::path out;
  DType dtype = DType::kBF16;         // kBF16, kF16 or kF32 (every non-quantised tensor)
  std::optional<DType> weight_quant;  // kI8 / kFP8E4M3: compressed-tensors W8A8 linear weights
  std::optional<Sparsity> prune;      // prune linear weights to this Z:L pattern
  uint64_t seed = 0;
  int shards = 1;
  bool overwrite = false;
};

struct MakeModelReport {
  int64_t tensors = 0;
  int64_t params = 0;
  uint64_t bytes = 0;
  int shards = 0;
  double seconds = 0;
};

MakeModelReport make_model(const MakeModelOptions& options);

}  // namespace slidesparse
