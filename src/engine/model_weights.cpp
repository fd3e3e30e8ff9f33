#include "engine/model_weights.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>

#include "cuda/check.h"
#include "io/hf_layout.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/slide_manifest.h"
#include "io/tensor_data.h"
#include "kernels/random_fill.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {

DeviceWeight ProjectionOnDevice::weight() const {
  DeviceWeight w;
  w.dtype = dtype;
  w.data = values.get();
  w.n = n;
  w.k = k;
  w.slid = slid;
  w.scale_per_channel = scales.bytes() ? scales.as<const float>() : nullptr;
  return w;
}

namespace {

TransformerConfig to_transformer_config(const ModelConfig& m) {
  TransformerConfig c;
  if (m.model_type == "qwen2") {
    c.family = ModelFamily::kQwen2;
  } else if (m.model_type == "llama") {
    c.family = ModelFamily::kLlama;
  } else {
    throw NotSupportedError("model " + m.name + ": model_type '" + m.model_type +
                            "' is not of the Llama / Qwen2 family");
  }
  c.hidden = m.hidden_size;
  c.intermediate = m.intermediate_size;
  c.num_q_heads = m.num_attention_heads;
  c.num_kv_heads = m.num_key_value_heads;
  c.head_dim = m.head_dim;
  c.layers = m.num_hidden_layers;
  c.vocab = m.vocab_size;
  c.rms_eps = m.rms_norm_eps;
  c.rope.theta = m.rope_theta;
  c.rope.head_dim = m.head_dim;
  if (m.rope_scaling) {
    c.rope.rope_type = m.rope_scaling->type;
    if (m.rope_scaling->type == "llama3") {
      Llama3RopeScaling s;
      s.factor = m.rope_scaling->factor;
      s.low_freq_factor = m.rope_scaling->low_freq_factor;
      s.high_freq_factor = m.rope_scaling->high_freq_factor;
      s.original_max_position_embeddings = m.rope_scaling->original_max_position_embeddings;
      c.rope.scaling = s;
    }
  } else {
    c.rope.rope_type = "default";
  }
  c.max_positions = m.max_position_embeddings;
  c.qkv_bias = m.qkv_bias;
  c.o_bias = m.o_bias;
  c.mlp_bias = m.mlp_bias;
  c.tie_word_embeddings = m.tie_word_embeddings;
  c.validate();
  return c;
}

DeviceBuffer upload(const void* data, size_t bytes, const std::string& what) {
  DeviceBuffer buffer;
  try {
    buffer = DeviceBuffer(bytes);
  } catch (const OutOfMemoryError& e) {
    throw OutOfMemoryError("out of GPU memory allocating " + what + " (" + std::to_string(bytes) +
                           " bytes): " + e.what());
  }
  if (bytes) SS_CUDA_CHECK(cudaMemcpy(buffer.get(), data, bytes, cudaMemcpyHostToDevice));
  return buffer;
}

DeviceBuffer allocate(size_t bytes, const std::string& what) {
  try {
    return DeviceBuffer(bytes);
  } catch (const OutOfMemoryError& e) {
    throw OutOfMemoryError("out of GPU memory allocating " + what + " (" + std::to_string(bytes) +
                           " bytes): " + e.what());
  }
}

std::vector<bf16_t> to_bf16(std::span<const float> v) { return to_bf16_vector(v); }

// Concatenates float matrices (row blocks) into one bf16 buffer on the device.
ProjectionOnDevice fuse_host(std::initializer_list<std::span<const float>> parts, int64_t k,
                             std::initializer_list<std::span<const float>> biases,
                             const std::string& what) {
  ProjectionOnDevice p;
  std::vector<bf16_t> all;
  for (auto part : parts) {
    const std::vector<bf16_t> b = to_bf16(part);
    all.insert(all.end(), b.begin(), b.end());
  }
  p.n = static_cast<int64_t>(all.size()) / k;
  p.k = k;
  p.values = upload(all.data(), all.size() * sizeof(bf16_t), what);
  std::vector<float> bias;
  for (auto part : biases) bias.insert(bias.end(), part.begin(), part.end());
  if (!bias.empty()) p.bias = upload(bias.data(), bias.size() * sizeof(float), what + " bias");
  return p;
}

// ---- random weights, drawn on the GPU -----------------------------------------------------

uint64_t mix(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + a * 0xBF58476D1CE4E5B9ull + b * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x * 0xD6E8FEB86659FD93ull + 1;
}

class RandomSource final : public WeightSource {
 public:
  RandomSource(const ModelSource& source) : seed_(source.seed) {
    const ModelConfig m = resolve_model(source.model);
    name_ = m.name;
    config_ = to_transformer_config(m);
    if (source.layers_override > 0) config_.layers = source.layers_override;
  }
  const TransformerConfig& config() const override { return config_; }
  const std::string& name() const override { return name_; }

  DecoderLayerOnDevice layer(int64_t i, cudaStream_t stream) override {
    const TransformerConfig& c = config_;
    const std::string at = name_ + " layer " + std::to_string(i);
    DecoderLayerOnDevice l;
    l.qkv =
        random_projection(c.qkv_dim(), c.hidden, c.qkv_bias, mix(seed_, i, 0), stream, at + " qkv");
    l.o = random_projection(c.hidden, c.q_dim(), c.o_bias, mix(seed_, i, 1), stream, at + " o");
    l.gate_up = random_projection(2 * c.intermediate, c.hidden, c.mlp_bias, mix(seed_, i, 2),
                                  stream, at + " gate_up");
    l.down = random_projection(c.hidden, c.intermediate, c.mlp_bias, mix(seed_, i, 3), stream,
                               at + " down");
    l.input_layernorm = random_norm(mix(seed_, i, 4));
    l.post_attention_layernorm = random_norm(mix(seed_, i, 5));
    return l;
  }
  DeviceBuffer embedding(cudaStream_t stream) override {
    const int64_t count = config_.vocab * config_.hidden;
    DeviceBuffer e = allocate(count * 2, name_ + " embedding");
    fill_random(e.get(), DType::kBF16, count, mix(seed_, 1u << 20, 0), stream, 1.0f);
    return e;
  }
  std::vector<bf16_t> final_norm() override { return random_norm(mix(seed_, 1u << 20, 1)); }
  std::optional<DeviceBuffer> lm_head(cudaStream_t stream) override {
    if (config_.tie_word_embeddings) return std::nullopt;
    const int64_t count = config_.vocab * config_.hidden;
    DeviceBuffer e = allocate(count * 2, name_ + " lm_head");
    fill_random(e.get(), DType::kBF16, count, mix(seed_, 1u << 20, 2), stream,
                1.0f / std::sqrt(static_cast<float>(config_.hidden)));
    return e;
  }

 private:
  ProjectionOnDevice random_projection(int64_t n, int64_t k, bool bias, uint64_t seed,
                                       cudaStream_t stream, const std::string& what) {
    ProjectionOnDevice p;
    p.n = n;
    p.k = k;
    p.values = allocate(n * k * 2, what);
    fill_random(p.values.get(), DType::kBF16, n * k, seed, stream,
                1.0f / std::sqrt(static_cast<float>(k)));
    if (bias) {
      p.bias = allocate(n * sizeof(float), what + " bias");
      fill_random(p.bias.get(), DType::kF32, n, seed + 7, stream, 0.1f);
    }
    return p;
  }
  std::vector<bf16_t> random_norm(uint64_t seed) const {
    std::vector<bf16_t> w(config_.hidden);
    uint64_t x = seed;
    for (auto& v : w) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const float u = static_cast<float>((x >> 40) & 0xFFFFFF) / 16777216.0f;
      v = bf16_from_float(0.8f + 0.4f * u);
    }
    return w;
  }

  uint64_t seed_;
  std::string name_;
  TransformerConfig config_;
};

// ---- host weights (tests) ------------------------------------------------------------------

class HostSource final : public WeightSource {
 public:
  explicit HostSource(const ModelSource& source) : config_(source.config), w_(*source.host) {
    config_.validate();
    validate_ref_weights(config_, w_);
  }
  const TransformerConfig& config() const override { return config_; }
  const std::string& name() const override { return name_; }
  bool pruned_already() const override { return true; }
  DecoderLayerOnDevice layer(int64_t i, cudaStream_t) override {
    const RefLayerWeights& r = w_.layers[i];
    const std::string at = "layer " + std::to_string(i);
    DecoderLayerOnDevice l;
    l.qkv = fuse_host({r.q_proj, r.k_proj, r.v_proj}, config_.hidden,
                      {r.q_bias, r.k_bias, r.v_bias}, at + " qkv");
    l.o = fuse_host({r.o_proj}, config_.q_dim(), {r.o_bias}, at + " o");
    l.gate_up = fuse_host({r.gate_proj, r.up_proj}, config_.hidden, {r.gate_bias, r.up_bias},
                          at + " gate_up");
    l.down = fuse_host({r.down_proj}, config_.intermediate, {r.down_bias}, at + " down");
    l.input_layernorm = r.input_layernorm;
    l.post_attention_layernorm = r.post_attention_layernorm;
    return l;
  }
  DeviceBuffer embedding(cudaStream_t) override {
    return upload(w_.embed.data(), w_.embed.size() * 2, "embedding");
  }
  std::vector<bf16_t> final_norm() override { return w_.norm; }
  std::optional<DeviceBuffer> lm_head(cudaStream_t) override {
    if (config_.tie_word_embeddings) return std::nullopt;
    return upload(w_.lm_head.data(), w_.lm_head.size() * 2, "lm_head");
  }

 private:
  TransformerConfig config_;
  const RefModelWeights& w_;
  std::string name_ = "host";
};

// ---- checkpoints (HF, SlideSparse) -------------------------------------------------------

class CheckpointSource final : public WeightSource {
 public:
  explicit CheckpointSource(const ModelSource& source) : dir_(source.dir) {
    SS_REQUIRE(std::filesystem::is_directory(dir_),
               "checkpoint " << dir_.string() << " is not a folder");
    const ModelConfig m = ModelConfig::load(dir_);
    name_ = m.name;
    config_ = to_transformer_config(m);
    if (std::filesystem::exists(dir_ / kSlideManifestFile)) {
      manifest_ = SlideManifest::load(dir_);
      for (const SlidTensor& t : manifest_->tensors) slid_[t.name] = t;
    }
    checkpoint_ = std::make_unique<Checkpoint>(dir_);
    check_against_config();
  }
  const TransformerConfig& config() const override { return config_; }
  const std::string& name() const override { return name_; }
  bool pruned_already() const override { return manifest_.has_value(); }
  std::optional<SlidCheckpointInfo> slid() const override {
    if (!manifest_) return std::nullopt;
    return SlidCheckpointInfo{manifest_->sparsity, manifest_->precision};
  }

  DecoderLayerOnDevice layer(int64_t i, cudaStream_t) override {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    DecoderLayerOnDevice l;
    l.qkv = projection({p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"},
                       config_.hidden, config_.qkv_bias);
    l.o = projection({p + "self_attn.o_proj"}, config_.q_dim(), config_.o_bias);
    l.gate_up =
        projection({p + "mlp.gate_proj", p + "mlp.up_proj"}, config_.hidden, config_.mlp_bias);
    l.down = projection({p + "mlp.down_proj"}, config_.intermediate, config_.mlp_bias);
    l.input_layernorm = read_bf16(p + "input_layernorm.weight");
    l.post_attention_layernorm = read_bf16(p + "post_attention_layernorm.weight");
    return l;
  }
  DeviceBuffer embedding(cudaStream_t) override {
    const auto v = read_bf16("model.embed_tokens.weight");
    return upload(v.data(), v.size() * 2, "embedding");
  }
  std::vector<bf16_t> final_norm() override { return read_bf16("model.norm.weight"); }
  std::optional<DeviceBuffer> lm_head(cudaStream_t) override {
    if (config_.tie_word_embeddings) return std::nullopt;
    const auto v = read_bf16("lm_head.weight");
    return upload(v.data(), v.size() * 2, "lm_head");
  }

 private:
  // Every tensor the config implies is present with its shape and a float dtype (slid linears:
  // codes [n, K'] of the manifest's precision with their scales) before anything reaches the GPU.
  void check_against_config() {
    const std::string where = "checkpoint " + dir_.string();
    for (const HfTensor& t : hf_tensor_layout(ModelConfig::load(dir_))) {
      if (config_.tie_word_embeddings && t.role == HfTensorRole::kLmHead) continue;
      SS_REQUIRE_T(FormatError, checkpoint_->contains(t.name),
                   where << ": tensor " << t.name << " is missing");
      const TensorInfo& info = checkpoint_->info(t.name);
      auto s = slid_.find(t.name);
      if (s != slid_.end()) {
        const SlidTensor& st = s->second;
        const std::vector<int64_t> want{st.n, st.k_slide};
        SS_REQUIRE_T(FormatError,
                     t.shape.size() == 2 && t.shape[0] == st.n && t.shape[1] == st.k &&
                         st.k_slide == manifest_->sparsity.k_slide(st.k),
                     where << ": " << t.name << " is recorded as n=" << st.n << " k=" << st.k
                           << " K'=" << st.k_slide << ", the config implies [" << t.shape[0] << ", "
                           << t.shape[1] << "]");
        SS_REQUIRE_T(FormatError, info.shape == want,
                     where << ": tensor " << t.name << " has shape " << shape_text(info.shape)
                           << ", expected W' " << shape_text(want));
        SS_REQUIRE_T(FormatError, info.dtype == manifest_->precision,
                     where << ": tensor " << t.name << " is " << dtype_name(info.dtype)
                           << ", the manifest says " << dtype_name(manifest_->precision));
        if (!st.scale.empty()) {
          SS_REQUIRE_T(FormatError, checkpoint_->contains(st.scale),
                       where << ": scale tensor " << st.scale << " is missing");
          const TensorInfo& si = checkpoint_->info(st.scale);
          SS_REQUIRE_T(FormatError, si.dtype == DType::kF32 && si.numel() == st.n,
                       where << ": scale tensor " << st.scale << " must be F32 with " << st.n
                             << " elements");
        }
        continue;
      }
      SS_REQUIRE_T(FormatError, !manifest_ || t.role != HfTensorRole::kLinearWeight,
                   where << ": linear weight " << t.name << " is not in slidesparse.json");
      SS_REQUIRE_T(FormatError, info.shape == t.shape,
                   where << ": tensor " << t.name << " has shape " << shape_text(info.shape)
                         << ", the config implies " << shape_text(t.shape));
      SS_REQUIRE_T(
          FormatError,
          info.dtype == DType::kBF16 || info.dtype == DType::kF16 || info.dtype == DType::kF32,
          where << ": tensor " << t.name << " is " << dtype_name(info.dtype)
                << " (BF16, F16 or F32 expected)");
    }
  }
  static std::string shape_text(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  }
  std::vector<float> read_float(const std::string& name) const {
    const TensorInfo& info = checkpoint_->info(name);
    std::vector<float> v = decode_to_float(checkpoint_->bytes(name), info.dtype);
    checkpoint_->release(name);
    return v;
  }
  std::vector<bf16_t> read_bf16(const std::string& name) const { return to_bf16(read_float(name)); }
  ProjectionOnDevice projection(std::initializer_list<std::string> bases, int64_t k, bool bias) {
    ProjectionOnDevice p;
    const std::string what = *bases.begin();
    std::vector<float> biases;
    if (bias)
      for (const std::string& b : bases) {
        const auto v = read_float(b + ".bias");
        biases.insert(biases.end(), v.begin(), v.end());
      }
    if (manifest_) {
      std::vector<std::byte> codes;
      std::vector<float> scales;
      for (const std::string& b : bases) {
        const SlidTensor& st = slid_.at(b + ".weight");
        const auto bytes = checkpoint_->bytes(st.name);
        codes.insert(codes.end(), bytes.begin(), bytes.end());
        checkpoint_->release(st.name);
        if (!st.scale.empty()) {
          const auto s = read_float(st.scale);
          scales.insert(scales.end(), s.begin(), s.end());
        }
        p.n += st.n;
      }
      p.k = k;
      p.dtype = manifest_->precision;
      p.slid = true;
      p.values = upload(codes.data(), codes.size(), what);
      if (!scales.empty()) p.scales = upload(scales.data(), scales.size() * 4, what + " scales");
    } else {
      std::vector<bf16_t> all;
      for (const std::string& b : bases) {
        const auto v = read_bf16(b + ".weight");
        all.insert(all.end(), v.begin(), v.end());
      }
      p.n = static_cast<int64_t>(all.size()) / k;
      p.k = k;
      p.values = upload(all.data(), all.size() * 2, what);
    }
    if (!biases.empty()) p.bias = upload(biases.data(), biases.size() * 4, what + " bias");
    return p;
  }

  std::filesystem::path dir_;
  std::string name_;
  TransformerConfig config_;
  std::optional<SlideManifest> manifest_;
  std::map<std::string, SlidTensor> slid_;
  std::unique_ptr<Checkpoint> checkpoint_;
};

}  // namespace

std::unique_ptr<WeightSource> open_weight_source(const ModelSource& source) {
  switch (source.kind) {
    case ModelSource::Kind::kRandom:
      return std::make_unique<RandomSource>(source);
    case ModelSource::Kind::kHost:
      SS_REQUIRE(source.host != nullptr, "ModelSource::from_host: no weights");
      return std::make_unique<HostSource>(source);
    case ModelSource::Kind::kCheckpoint:
      return std::make_unique<CheckpointSource>(source);
  }
  throw Error("unknown model source");
}

ModelSource ModelSource::random(std::string name_or_config, uint64_t seed) {
  ModelSource s;
  s.kind = Kind::kRandom;
  s.model = std::move(name_or_config);
  s.seed = seed;
  return s;
}

ModelSource ModelSource::checkpoint(std::filesystem::path dir) {
  ModelSource s;
  s.kind = Kind::kCheckpoint;
  s.dir = std::move(dir);
  return s;
}

ModelSource ModelSource::from_host(const TransformerConfig& config,
                                   const RefModelWeights& weights) {
  ModelSource s;
  s.kind = Kind::kHost;
  s.config = config;
  s.host = &weights;
  return s;
}

}  // namespace slidesparse
