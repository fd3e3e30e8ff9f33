// Random HF checkpoints (see make_model.h). Values are uniform and deterministic per (seed, tensor
// name, row chunk); tensors are generated and written in row chunks so memory stays bounded.
#include "convert/make_model.h"


#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/output_dir.h"
#include "io/checksum.h"
#include "io/hf_layout.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChunkElements = 4 << 20;

// splitmix64: small, fast and good enough for test weights.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1p-24f * 2.0f - 1.0f; }  // [-1,1)
};

uint64_t tensor_seed(uint64_t seed, const std::string& name, int64_t chunk) {
  Fnv1a64 h;
  h.update(std::as_bytes(std::span(name.data(), name.size())));
  return h.value() ^ (seed * 0x9e3779b97f4a7c15ull) ^ (static_cast<uint64_t>(chunk) << 32);
}

nlohmann::json quantization_config(DType quant) {
  const bool is_int = quant == DType::kI8;
  const nlohmann::json args_w = {{"num_bits", 8},
                                 {"type", is_int ? "int" : "float"},
                                 {"strategy", "channel"},
                                 {"symmetric", true},
                                 {"dynamic", false}};
  const nlohmann::json args_x = {{"num_bits", 8},
                                 {"type", is_int ? "int" : "float"},
                                 {"strategy", "token"},
                                 {"symmetric", true},
                                 {"dynamic", true}};
  return {{"quant_method", "compressed-tensors"},
          {"format", is_int ? "int-quantized" : "float-quantized"},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}}, {"weights", args_w}, {"input_activations", args_x}}}}},
          {"ignore", {"lm_head"}}};
}

std::string torch_dtype_name(DType d) {
  switch (d) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kF32:
      return "float32";
    default:
      throw Error("make-model: --dtype must be bf16, fp16 or fp32");
  }
}

struct Planned {
  HfTensor tensor;
  TensorSpec spec;
  bool quantized = false;
  int shard = 0;
};

// Writes one tensor's values (chunked by rows).
void generate(const Planned& p, const MakeModelOptions& opt, SafetensorsWriter& writer) {
  const auto& shape = p.tensor.shape;
  const int64_t cols = shape.size() >= 2 ? shape.back() : (shape.empty() ? 1 : shape[0]);
  const int64_t rows = shape.size() >= 2 ? shape[0] : 1;
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkElements / cols);
  const bool linear = p.tensor.role == HfTensorRole::kLinearWeight;
  const bool norm = p.tensor.role == HfTensorRole::kNorm;
  for (int64_t r0 = 0, chunk = 0; r0 < rows; r0 += chunk_rows, ++chunk) {
    const int64_t r = std::min(chunk_rows, rows - r0);
    SplitMix64 rng{tensor_seed(opt.seed, p.tensor.name, chunk)};
    if (p.quantized) {
      if (*opt.weight_quant == DType::kI8) {
        std::vector<int8_t> codes(static_cast<size_t>(r * cols));
        for (auto& c : codes) c = static_cast<int8_t>(std::lround(rng.uniform() * 127.0f));
        if (opt.prune) prune_magnitude<int8_t>(codes, r, cols, *opt.prune);
        writer.write_part(p.tensor.name, std::as_bytes(std::span(codes)));
      } else {
        std::vector<fp8_e4m3_t> codes(static_cast<size_t>(r * cols));
        for (auto& c : codes) c = e4m3_from_float(rng.uniform() * kE4M3Max);
        if (opt.prune) prune_magnitude<fp8_e4m3_t>(codes, r, cols, *opt.prune);
        writer.write_part(p.tensor.name, std::as_bytes(std::span(codes)));
      }
      continue;
    }
    std::vector<float> values(static_cast<size_t>(r * cols));
    for (auto& v : values) v = norm ? 1.0f + 0.1f * rng.uniform() : 0.05f * rng.uniform();
    if (linear && opt.prune) prune_magnitude<float>(values, r, cols, *opt.prune);
    writer.write_part(p.tensor.name, encode_from_float(values, p.spec.dtype));
  }
}

void write_scales(const Planned& p, const MakeModelOptions& opt, SafetensorsWriter& writer) {
  SplitMix64 rng{tensor_seed(opt.seed, p.tensor.name + "_scale", 0)};
  std::vector<float> scales(static_cast<size_t>(p.tensor.shape[0]));
  // Dequantised weights of roughly 0.02-0.05 magnitude, like the float models.
  const float qmax = *opt.weight_quant == DType::kI8 ? 127.0f : kE4M3Max;
  for (auto& s : scales) s = (0.035f + 0.015f * rng.uniform()) / qmax;
  writer.write_values<float>(p.tensor.name + "_scale", scales);
}

}  // namespace

MakeModelReport make_model(const MakeModelOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  SS_REQUIRE(!opt.out.empty(), "make-model: no output directory given");
  SS_REQUIRE(opt.shards >= 1, "make-model: --shards must be at least 1 (got " << opt.shards << ")");
  SS_REQUIRE(opt.layers >= 0, "make-model: --layers must be positive (got " << opt.layers << ")");
  SS_REQUIRE(
      !opt.weight_quant || *opt.weight_quant == DType::kI8 || *opt.weight_quant == DType::kFP8E4M3,
      "make-model: --weight-quant must be int8 or fp8");
  const std::string torch_dtype = torch_dtype_name(opt.dtype);
  std::error_code ec;
  SS_REQUIRE(opt.overwrite || !fs::exists(opt.out, ec),
             "make-model: output " << opt.out.string() << " exists (pass --overwrite)");

  const fs::path config_path = resolve_model_path(opt.config);
  nlohmann::json config_json;
  {
    std::ifstream in(config_path, std::ios::binary);
    SS_REQUIRE(in.good(), "make-model: cannot open " << config_path.string());
    try {
      config_json = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(config_path.string() + " is not valid JSON: " + e.what());
    }
  }
  if (opt.layers > 0) config_json["num_hidden_layers"] = opt.layers;
  config_json["torch_dtype"] = torch_dtype;
  config_json.erase("dtype");
  config_json.erase("quantization_config");
  if (opt.weight_quant) config_json["quantization_config"] = quantization_config(*opt.weight_quant);
  const ModelConfig config =
      ModelConfig::from_json(config_json, config_path.stem().string());  // validates

  std::vector<Planned> planned;
  uint64_t total_bytes = 0;
  for (const HfTensor& t : hf_tensor_layout(config)) {
    Planned p;
    p.tensor = t;
    p.quantized = opt.weight_quant && t.role == HfTensorRole::kLinearWeight;
    p.spec = {t.name, p.quantized ? *opt.weight_quant : opt.dtype, t.shape};
    total_bytes += static_cast<uint64_t>(p.spec.nbytes());
    planned.push_back(p);
  }
  // Shard by byte position: tensor i goes to floor(start_i * shards / total).
  uint64_t at = 0;
  int used = 0;
  for (Planned& p : planned) {
    p.shard = static_cast<int>(std::min<uint64_t>(
        static_cast<uint64_t>(opt.shards) - 1,
        static_cast<uint64_t>(static_cast<long double>(at) * opt.shards / total_bytes)));
    at += static_cast<uint64_t>(p.spec.nbytes());
  }
  // Renumber the shards actually used (a huge tensor can swallow a slot).
  std::vector<int> remap(static_cast<size_t>(opt.shards), -1);
  for (Planned& p : planned) {
    if (remap[static_cast<size_t>(p.shard)] < 0) remap[static_cast<size_t>(p.shard)] = used++;
    p.shard = remap[static_cast<size_t>(p.shard)];
  }
  const bool sharded = opt.shards > 1;
  auto shard_name = [&](int s) {
    if (!sharded) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", s + 1, used);
    return std::string(buf);
  };

  StagedOutputDir staged("make-model", opt.out);
  const fs::path& tmp = staged.dir();

  MakeModelReport report;
  try {
    nlohmann::json weight_map = nlohmann::json::object();
    for (int s = 0; s < used; ++s) {
      std::vector<TensorSpec> specs;
      for (const Planned& p : planned) {
        if (p.shard != s) continue;
        specs.push_back(p.spec);
        if (p.quantized)
          specs.push_back({p.tensor.name + "_scale", DType::kF32, {p.tensor.shape[0], 1}});
      }
      SafetensorsWriter writer(tmp / shard_name(s), specs, {{"format", "pt"}});
      for (const Planned& p : planned) {
        if (p.shard != s) continue;
        generate(p, opt, writer);
        weight_map[p.tensor.name] = shard_name(s);
        report.params += TensorInfo{p.spec.name, p.spec.dtype, p.spec.shape, 0, 0}.numel();
        ++report.tensors;
        if (p.quantized) {
          write_scales(p, opt, writer);
          weight_map[p.tensor.name + "_scale"] = shard_name(s);
          ++report.tensors;
        }
      }
      writer.finish();
      report.bytes += writer.total_bytes();
    }
    if (sharded) {
      nlohmann::json index = {{"metadata", {{"total_size", report.bytes}}},
                              {"weight_map", weight_map}};
      write_file_atomic(tmp / "model.safetensors.index.json", index.dump(2) + "\n");
    }
    write_file_atomic(tmp / "config.json", config_json.dump(2) + "\n");
    staged.commit();
  } catch (...) {
    staged.rethrow_as_output_error();
  }
  report.shards = used;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace slidesparse
