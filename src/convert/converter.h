// `slidesparse convert`: a Hugging Face Llama / Qwen2 checkpoint (BF16 / FP16 / FP32, or
// compressed-tensors W8A8 int8 / fp8) -> a SlideSparse checkpoint. Linear weights are pruned to Z:L
// (or checked), quantised per channel and slid to W' [N, K'] under their own names, with
// "<name>_scale" (F32 [N, 1]) beside them; every other tensor and file is copied. One output shard
// per input shard; one linear weight in memory at a time. The output appears atomically: it is
// built in "<out>.tmp-<pid>" and renamed at the end, slidesparse.json written last; a failure or an
// interrupt leaves --out as it was (convert/output_dir.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

struct ConvertOptions {
  std::filesystem::path in;
  std::filesystem::path out;
  Sparsity sparsity = Sparsity::from_block(8);
  DType precision = DType::kI8;  // kI8, kFP8E4M3 or kBF16
  bool assume_pruned = false;    // check the Z:L pattern instead of pruning
  bool overwrite = false;        // replace an existing `out` (only once the new one is complete)
  int threads = 0;               // 0: std::thread::hardware_concurrency()
  std::function<void(std::string_view)> progress;  // one line per step, may be empty
  // Checked between tensors (and between 64 MiB chunks of a copied one): once set, the run stops
  // with InterruptedError (convert/output_dir.h), the temporary output removed. May be null.
  const std::atomic<bool>* cancel = nullptr;
};

struct ConvertReport {
  int64_t tensors = 0;         // tensors in the source
  int64_t linear_weights = 0;  // of which pruned / quantised / slid
  int64_t linear_params = 0;   // elements of those weights (N*K summed)
  int64_t total_params = 0;
  uint64_t bytes_in = 0;   // source safetensors bytes
  uint64_t bytes_out = 0;  // written safetensors bytes
  double seconds = 0;      // wall time of the whole conversion
  double checksum_seconds = 0;
  std::string source_checksum;
};

ConvertReport convert_checkpoint(const ConvertOptions& options);

}  // namespace slidesparse
