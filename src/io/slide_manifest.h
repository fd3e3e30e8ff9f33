// slidesparse.json: what the converter did to a checkpoint, for loaders and for `verify`.
// Records the pattern, the precision, K and K' of every slid tensor, the tool version and the
// FNV-1a 64 digests of the source files. Loaders find W' [n, k_slide] under the tensor's own name
// and, for int8 / fp8, the per-channel scale (F32 [n, 1]) under `scale`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

inline constexpr const char* kSlideManifestFile = "slidesparse.json";
inline constexpr int kSlideManifestFormatVersion = 1;

struct SlidTensor {
  std::string name;   // "model.layers.0.self_attn.q_proj.weight", holds W' [n, k_slide]
  std::string scale;  // "<name>_scale" (F32 [n, 1]); empty for bf16
  int64_t n = 0;
  int64_t k = 0;
  int64_t k_slide = 0;
  DType source_dtype = DType::kBF16;
};

struct SlideManifest {
  std::string tool_version;
  Sparsity sparsity;
  DType precision = DType::kI8;  // kI8, kFP8E4M3 or kBF16
  bool assume_pruned = false;    // source checked, not pruned by the converter
  std::string checksum_algorithm = "fnv1a64";
  std::string source_checksum;                      // digest over the per-file digests
  std::map<std::string, std::string> source_files;  // file name -> digest
  std::vector<SlidTensor> tensors;

  nlohmann::json to_json() const;
  // FormatError naming the key on anything missing or inconsistent.
  static SlideManifest from_json(const nlohmann::json& j, const std::string& what);
  static SlideManifest load(const std::filesystem::path& dir);
  // Digest over "name:digest\n" lines of `files` in name order.
  static std::string combine_checksums(const std::map<std::string, std::string>& files);
};

}  // namespace slidesparse
