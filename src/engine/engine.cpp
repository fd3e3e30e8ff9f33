// The engine's runtime: layers built from the weight source, one scratch arena, the paged KV
// cache, prefill (eager) and decode (CUDA graphs per padded batch size). Rounding points follow
// core/model_ref.h step by step, so the CPU reference model is the oracle of every test.
#include "slidesparse/engine/engine.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>

#include "cuda/check.h"
#include "cuda/cuda_graph.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "engine/model_weights.h"
#include "kernels/attention/batch_attention.h"
#include "kernels/attention/kv_cache.h"
#include "kernels/attention/rope_kv_write.h"
#include "kernels/embedding.h"
#include "kernels/rms_norm.h"
#include "kernels/sampling.h"
#include "kernels/silu_mul.h"
#include "kernels/weight_prep.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/rope_ref.h"
#include "slidesparse/error.h"

namespace slidesparse {

EngineBackendChoice parse_engine_backend(std::string_view text) {
  if (text == "cublaslt") return {GemmBackend::kCublasLt, false};
  if (text == "cublaslt-fa") return {GemmBackend::kCublasLt, true};
  if (text == "cusparselt") return {GemmBackend::kCusparseLt, false};
  throw Error("backend '" + std::string(text) +
              "' is not one of cublaslt, cublaslt-fa (FP8 fast accumulation), cusparselt");
}

std::string engine_backend_name(const EngineBackendChoice& c) {
  if (c.backend == GemmBackend::kCusparseLt) return "cusparselt";
  return c.fast_accum ? "cublaslt-fa" : "cublaslt";
}

namespace {

constexpr size_t kAlign = 256;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::vector<int64_t> power_of_two_buckets(int64_t max) {
  std::vector<int64_t> b;
  for (int64_t m = 1; m < max; m *= 2) b.push_back(m);
  b.push_back(max);
  return b;
}

DeviceBuffer allocate(size_t bytes, const std::string& what) {
  try {
    return DeviceBuffer(std::max<size_t>(bytes, 1));
  } catch (const OutOfMemoryError& e) {
    throw OutOfMemoryError("out of GPU memory allocating " + what + " (" +
                           std::to_string(bytes >> 20) + " MiB): " + e.what());
  }
}

std::string mib(int64_t bytes) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << static_cast<double>(bytes) / (1 << 20) << " MiB";
  return os.str();
}

struct PinnedHost {
  void* ptr = nullptr;
  explicit PinnedHost(size_t bytes) {
    SS_CUDA_CHECK(cudaMallocHost(&ptr, std::max<size_t>(bytes, 1)));
  }
  ~PinnedHost() { cudaFreeHost(ptr); }
  PinnedHost(const PinnedHost&) = delete;
  PinnedHost& operator=(const PinnedHost&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

struct DecoderLayer {
  std::unique_ptr<LinearLayer> qkv, o, gate_up, down;
  DeviceBuffer input_layernorm, post_attention_layernorm;  // bf16 [H]
};

}  // namespace

struct Engine::Impl {
  TransformerConfig cfg;
  EngineOptions opt;
  std::string name;
  std::string backend_text;
  CudaStream stream;
  std::vector<DecoderLayer> layers;
  std::unique_ptr<LinearLayer> lm_head;
  DeviceBuffer embed, final_norm, cos_sin;
  int64_t max_tokens = 0;     // rows of every activation buffer (prefill and padded decode)
  int64_t max_batch_pad = 0;  // largest padded decode batch
  std::vector<int64_t> decode_buckets;

  // activations
  DeviceBuffer h, xn, qkv, attn, gate_up, swiglu, codes, scales, arena, xf, logits;
  DeviceBuffer tokens_dev, positions_dev, slots_dev, last_rows_dev, sampled_dev;
  std::unique_ptr<PinnedHost> staging;  // tokens, positions, slots, last rows, sampled
  size_t arena_bytes = 0;
  int64_t weight_bytes = 0, scratch_bytes = 0;

  // KV cache
  KvCacheShape kv_shape;
  DeviceBuffer kv;  // layers x {k, v}
  int64_t dummy_page = 0;
  std::vector<int32_t> free_pages;
  std::unique_ptr<BatchAttention> prefill_attn, decode_attn;
  std::map<int64_t, CudaGraph> decode_graphs;
  CudaEvent step_start, step_end;

  // Per-op timing (profile_ops): an event after each op, names in order.
  struct OpProfiler {
    std::vector<CudaEvent> events;
    std::vector<const char*> names;
    size_t used = 0;
    bool on = false;
  } prof;
  void mark(const char* op) {
    if (!prof.on) return;
    if (prof.used == prof.events.size()) prof.events.emplace_back();
    prof.events[prof.used].record(stream.get());
    if (prof.names.size() <= prof.used) prof.names.resize(prof.used + 1);
    prof.names[prof.used++] = op;
  }
  std::vector<std::pair<std::string, double>> collect_profile() {
    std::vector<std::pair<std::string, double>> out;
    for (size_t k = 1; k < prof.used; ++k) {
      const double ms = prof.events[k].elapsed_ms_since(prof.events[k - 1]);
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const auto& p) { return p.first == prof.names[k]; });
      if (it == out.end())
        out.emplace_back(prof.names[k], ms);
      else
        it->second += ms;
    }
    prof.used = 0;
    return out;
  }

  // the batch
  struct Sequence {
    int64_t length = 0;
    int64_t reserved = 0;
    std::vector<int32_t> pages;
  };
  std::vector<Sequence> seqs;
  bool prefilled = false;

  KvCacheLayer cache(size_t l) const {
    const int64_t bytes = kv_shape.bytes_per_array();
    char* base = static_cast<char*>(kv.get()) + static_cast<int64_t>(2 * l) * bytes;
    return {base, base + bytes};
  }

  // ---- building -----------------------------------------------------------------------
  std::unique_ptr<LinearLayer> make_linear(const ProjectionOnDevice& p, bool sparse_allowed,
                                           DType compute) const {
    LinearOptions lo;
    lo.compute = compute;
    lo.epilogue = opt.epilogue;
    lo.use_tuning = opt.use_tuning;
    lo.fast_accum = opt.fast_accum;
    if (sparse_allowed && opt.backend == GemmBackend::kCusparseLt)
      return std::make_unique<SlideSparseLinear>(p.weight(), *opt.sparsity, p.bias_ptr(), lo,
                                                 stream.get());
    return std::make_unique<Linear>(p.weight(), p.bias_ptr(), lo, stream.get());
  }

  DeviceBuffer upload_bf16(const std::vector<bf16_t>& v, const std::string& what) const {
    DeviceBuffer b = allocate(v.size() * 2, what);
    SS_CUDA_CHECK(cudaMemcpy(b.get(), v.data(), v.size() * 2, cudaMemcpyHostToDevice));
    return b;
  }

  void load(WeightSource& src) {
    cfg = src.config();
    name = src.name();
    const bool prune = opt.sparsity && opt.prune && !src.pruned_already();
    for (int64_t i = 0; i < cfg.layers; ++i) {
      DecoderLayerOnDevice w = src.layer(i, stream.get());
      if (prune)
        for (ProjectionOnDevice* p : {&w.qkv, &w.o, &w.gate_up, &w.down})
          launch_prune_magnitude(p->values.get(), p->dtype, p->n, p->k, *opt.sparsity,
                                 stream.get());
      DecoderLayer l;
      const std::string at = name + " layer " + std::to_string(i);
      try {
        l.qkv = make_linear(w.qkv, true, opt.compute);
        l.o = make_linear(w.o, true, opt.compute);
        l.gate_up = make_linear(w.gate_up, true, opt.compute);
        l.down = make_linear(w.down, true, opt.compute);
      } catch (const PatternError& e) {
        throw PatternError(at + ": " + e.what(), e.row(), e.block());
      } catch (const OutOfMemoryError& e) {
        throw OutOfMemoryError(at + ": out of GPU memory building its linear layers: " + e.what());
      }
      l.input_layernorm = upload_bf16(w.input_layernorm, at + " input_layernorm");
      l.post_attention_layernorm = upload_bf16(w.post_attention_layernorm, at + " norm");
      for (auto* x : {l.qkv.get(), l.o.get(), l.gate_up.get(), l.down.get()})
        weight_bytes += static_cast<int64_t>(x->device_bytes());
      weight_bytes += 4 * cfg.hidden;
      layers.push_back(std::move(l));
    }
    embed = src.embedding(stream.get());
    final_norm = upload_bf16(src.final_norm(), "final norm");
    std::optional<DeviceBuffer> head = src.lm_head(stream.get());
    ProjectionOnDevice lm;
    lm.n = cfg.vocab;
    lm.k = cfg.hidden;
    LinearOptions lo;
    lo.compute = DType::kBF16;
    lo.use_tuning = opt.use_tuning;
    DeviceWeight dw;
    dw.dtype = DType::kBF16;
    dw.data = head ? head->get() : embed.get();
    dw.n = cfg.vocab;
    dw.k = cfg.hidden;
    lm_head = std::make_unique<Linear>(dw, nullptr, lo, stream.get());
    weight_bytes += static_cast<int64_t>(embed.bytes() + lm_head->device_bytes());
    SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  }

  void prepare_and_size() {
    max_batch_pad = decode_pad(opt.max_batch);
    max_tokens = std::max<int64_t>(opt.max_tokens_per_step, max_batch_pad);
    decode_buckets = power_of_two_buckets(opt.max_batch);
    std::vector<int64_t> buckets = power_of_two_buckets(max_tokens);
    std::vector<int64_t> batch_buckets = decode_buckets;
    batch_buckets.push_back(opt.max_batch);
    for (DecoderLayer& l : layers)
      for (auto* x : {l.qkv.get(), l.o.get(), l.gate_up.get(), l.down.get()}) {
        x->prepare(buckets);
        arena_bytes = std::max(arena_bytes, x->workspace_bytes(max_tokens));
      }
    lm_head->prepare(batch_buckets);
    arena_bytes = std::max(arena_bytes, lm_head->workspace_bytes(opt.max_batch));

    int64_t max_gemm_k = 0, max_pad = max_tokens;
    for (auto* x :
         {layers.front().qkv.get(), layers.front().gate_up.get(), layers.front().down.get()}) {
      max_gemm_k = std::max(max_gemm_k, x->gemm_k());
      max_pad = std::max(max_pad, x->padded_m(max_tokens));
    }
    const int64_t T = max_tokens, H = cfg.hidden, I = cfg.intermediate;
    const bool bf16 = opt.compute == DType::kBF16;
    auto act = [&](DeviceBuffer& b, int64_t elems, const char* what) {
      b = allocate(static_cast<size_t>(elems) * 2, std::string("activations ") + what);
      scratch_bytes += static_cast<int64_t>(b.bytes());
    };
    act(h, T * H, "h");
    act(qkv, T * cfg.qkv_dim(), "qkv");
    act(attn, T * cfg.q_dim(), "attention output");
    act(gate_up, T * 2 * I, "gate_up");
    if (bf16) {
      act(xn, T * H, "normed");
      act(swiglu, T * I, "swiglu");
    } else {
      codes = allocate(static_cast<size_t>(max_pad) * max_gemm_k, "quantised activations");
      scales = allocate(static_cast<size_t>(max_pad) * 4, "per-token scales");
      scratch_bytes += static_cast<int64_t>(codes.bytes() + scales.bytes());
    }
    arena = allocate(arena_bytes, "the linear layers' scratch arena");
    act(xf, max_batch_pad * H, "final norm rows");
    act(logits, max_batch_pad * cfg.vocab, "logits");
    scratch_bytes += static_cast<int64_t>(arena.bytes());
    tokens_dev = allocate(T * 4, "token ids");
    positions_dev = allocate(T * 4, "positions");
    slots_dev = allocate(T * 8, "kv slots");
    last_rows_dev = allocate(max_batch_pad * 4, "sampled rows");
    sampled_dev = allocate(max_batch_pad * 4, "sampled tokens");
    SS_CUDA_CHECK(cudaMemset(sampled_dev.get(), 0, sampled_dev.bytes()));
    SS_CUDA_CHECK(cudaMemset(tokens_dev.get(), 0, tokens_dev.bytes()));
    staging =
        std::make_unique<PinnedHost>(static_cast<size_t>(T) * (4 + 4 + 8) + max_batch_pad * 8);
    // rope table on the host (core's reference), once
    const std::vector<float> table = rope_cos_sin_table(cfg.rope, cfg.max_positions);
    cos_sin = allocate(table.size() * 4, "rope cos/sin table");
    SS_CUDA_CHECK(
        cudaMemcpy(cos_sin.get(), table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    scratch_bytes += static_cast<int64_t>(cos_sin.bytes());
  }

  void size_kv_cache() {
    kv_shape.page_size = opt.page_size;
    kv_shape.num_kv_heads = static_cast<int>(cfg.num_kv_heads);
    kv_shape.head_dim = static_cast<int>(cfg.head_dim);
    const int64_t bytes_per_token = 2 * cfg.layers * cfg.kv_dim() * 2;
    int64_t tokens = opt.kv_cache_tokens;
    // attention objects first: their workspaces count as scratch
    kv_shape.num_pages = 1;  // placeholder for the constructors' shape check
    if (tokens <= 0) {
      size_t free_b = 0, total_b = 0;
      SS_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
      // graphs, cuBLASLt workspaces and FlashInfer's buffers get 2 GiB plus 2% of the device
      const int64_t reserve = (int64_t(2) << 30) + static_cast<int64_t>(total_b) / 50;
      const int64_t usable =
          static_cast<int64_t>((static_cast<int64_t>(free_b) - reserve) * opt.kv_memory_fraction);
      tokens = usable / bytes_per_token;
      SS_REQUIRE_T(OutOfMemoryError, tokens >= opt.page_size,
                   "KV cache: " << mib(static_cast<int64_t>(free_b))
                                << " free after weights and scratch leaves no room for a KV "
                                   "cache (needs "
                                << mib(bytes_per_token * opt.page_size) << " per page)");
    }
    kv_shape.num_pages = (tokens + opt.page_size - 1) / opt.page_size + 1;  // + the dummy page
    validate_kv_cache_shape(kv_shape);
    kv = allocate(static_cast<size_t>(2 * cfg.layers) * kv_shape.bytes_per_array(),
                  "the KV cache (" + std::to_string(tokens) + " tokens)");
    SS_CUDA_CHECK(cudaMemset(kv.get(), 0, kv.bytes()));
    dummy_page = kv_shape.num_pages - 1;
    free_pages.resize(static_cast<size_t>(dummy_page));
    for (int64_t i = 0; i < dummy_page; ++i)
      free_pages[static_cast<size_t>(i)] = static_cast<int32_t>(dummy_page - 1 - i);
    prefill_attn =
        std::make_unique<BatchAttention>(static_cast<int>(cfg.num_q_heads), kv_shape,
                                         static_cast<int>(opt.max_batch), max_tokens, false);
    decode_attn =
        std::make_unique<BatchAttention>(static_cast<int>(cfg.num_q_heads), kv_shape,
                                         static_cast<int>(max_batch_pad), max_batch_pad, true);
    scratch_bytes += static_cast<int64_t>(
        prefill_attn->float_workspace_bytes() + prefill_attn->int_workspace_bytes() +
        decode_attn->float_workspace_bytes() + decode_attn->int_workspace_bytes());
  }

  int64_t decode_pad(int64_t b) const {
    for (int64_t m : power_of_two_buckets(opt.max_batch))
      if (m >= b) return m;
    return b;
  }

  // ---- one forward over T rows (inputs staged in tokens/positions/slots/last_rows) --------
  void norm_into(const DeviceBuffer& weight, int64_t T, const LinearLayer& consumer) {
    if (opt.compute == DType::kBF16) {
      launch_rms_norm(h.get(), cfg.hidden, nullptr, weight.get(), static_cast<float>(cfg.rms_eps),
                      T, cfg.hidden, xn.get(), cfg.hidden, stream.get());
      return;
    }
    const std::optional<Sparsity> sp = consumer.sparsity();
    launch_rms_norm_quant(h.get(), cfg.hidden, weight.get(), static_cast<float>(cfg.rms_eps), T,
                          cfg.hidden, opt.compute, sp ? &*sp : nullptr, codes.get(),
                          consumer.padded_m(T), consumer.gemm_k(), scales.as<float>(),
                          stream.get());
  }
  void run_linear(const LinearLayer& layer, const void* bf16_input, int64_t T,
                  const LinearOutput& out) const {
    const LinearScratch scratch{arena.get(), arena_bytes};
    if (opt.compute == DType::kBF16)
      layer.forward(stream.get(), bf16_input, T, out, scratch);
    else
      layer.forward_quantized(stream.get(), {codes.get(), scales.as<const float>()}, T, out,
                              scratch);
  }

  void forward(int64_t T, int64_t B, const BatchAttention& attention) {
    cudaStream_t s = stream.get();
    const int64_t H = cfg.hidden, I = cfg.intermediate;
    mark("start");
    launch_embedding(embed.get(), cfg.vocab, H, tokens_dev.as<int32_t>(), T, h.get(), s);
    mark("embedding");
    for (size_t li = 0; li < layers.size(); ++li) {
      const DecoderLayer& l = layers[li];
      norm_into(l.input_layernorm, T, *l.qkv);
      mark("norm+quant");
      run_linear(*l.qkv, xn.get(), T, {qkv.get(), cfg.qkv_dim(), nullptr, 0});
      mark("qkv");
      launch_rope_kv_write(qkv.get(), T, cfg.qkv_dim(), static_cast<int>(cfg.num_q_heads), kv_shape,
                           positions_dev.as<int32_t>(), cos_sin.as<float>(), cfg.max_positions,
                           slots_dev.as<int64_t>(), cache(li), s);
      mark("rope+kv");
      attention.run(qkv.get(), cfg.qkv_dim(), cache(li), attn.get(), s);
      mark("attention");
      const LinearScratch scratch{arena.get(), arena_bytes};
      l.o->forward(s, attn.get(), T, {h.get(), H, h.get(), H}, scratch);
      mark("o+residual");
      norm_into(l.post_attention_layernorm, T, *l.gate_up);
      mark("norm+quant");
      run_linear(*l.gate_up, xn.get(), T, {gate_up.get(), 2 * I, nullptr, 0});
      mark("gate_up");
      if (opt.compute == DType::kBF16) {
        launch_silu_mul(gate_up.get(), 2 * I, T, I, swiglu.get(), s);
      } else {
        const std::optional<Sparsity> sp = l.down->sparsity();
        launch_silu_mul_quant(gate_up.get(), 2 * I, T, I, opt.compute, sp ? &*sp : nullptr,
                              codes.get(), l.down->padded_m(T), l.down->gemm_k(),
                              scales.as<float>(), s);
      }
      mark("swiglu+quant");
      run_linear(*l.down, swiglu.get(), T, {h.get(), H, h.get(), H});
      mark("down+residual");
    }
    launch_rms_norm(h.get(), H, last_rows_dev.as<int32_t>(), final_norm.get(),
                    static_cast<float>(cfg.rms_eps), B, H, xf.get(), H, s);
    mark("final norm");
    lm_head->forward(s, xf.get(), B, {logits.get(), cfg.vocab, nullptr, 0},
                     {arena.get(), arena_bytes});
    mark("lm_head");
    launch_argmax(logits.get(), cfg.vocab, B, cfg.vocab, sampled_dev.as<int32_t>(), s);
    mark("argmax");
  }

  // ---- host-side staging ----------------------------------------------------------------
  int32_t* st_tokens() const { return staging->as<int32_t>(); }
  int32_t* st_positions() const { return st_tokens() + max_tokens; }
  int64_t* st_slots() const { return reinterpret_cast<int64_t*>(st_positions() + max_tokens); }
  int32_t* st_last() const { return reinterpret_cast<int32_t*>(st_slots() + max_tokens); }
  int32_t* st_sampled() const { return st_last() + max_batch_pad; }

  int64_t slot_of(const Sequence& q, int64_t pos) const {
    return static_cast<int64_t>(q.pages[static_cast<size_t>(pos / kv_shape.page_size)]) *
               kv_shape.page_size +
           pos % kv_shape.page_size;
  }

  // Plans attention over sequences whose cache holds `lengths_after[b]` tokens after this step
  // and whose queries are `queries[b]` rows; padded entries use the dummy page.
  void plan(BatchAttention& attention, std::span<const int64_t> queries,
            std::span<const int64_t> lengths_after, std::span<const Sequence* const> owners) {
    std::vector<int32_t> qo{0}, kvp{0}, idx, last;
    for (size_t b = 0; b < queries.size(); ++b) {
      qo.push_back(qo.back() + static_cast<int32_t>(queries[b]));
      const int64_t len = lengths_after[b];
      const int64_t pages = (len + kv_shape.page_size - 1) / kv_shape.page_size;
      if (owners[b] == nullptr) {
        idx.push_back(static_cast<int32_t>(dummy_page));
        last.push_back(1);
        kvp.push_back(kvp.back() + 1);
        continue;
      }
      for (int64_t p = 0; p < pages; ++p) idx.push_back(owners[b]->pages[static_cast<size_t>(p)]);
      kvp.push_back(kvp.back() + static_cast<int32_t>(pages));
      last.push_back(static_cast<int32_t>(len - (pages - 1) * kv_shape.page_size));
    }
    attention.plan(qo, kvp, idx, last, stream.get());
  }

  StepResult finish_step(int64_t B, bool return_logits) {
    cudaStream_t s = stream.get();
    SS_CUDA_CHECK(
        cudaMemcpyAsync(st_sampled(), sampled_dev.get(), B * 4, cudaMemcpyDeviceToHost, s));
    StepResult r;
    std::vector<uint16_t> raw;
    if (return_logits) {
      raw.resize(static_cast<size_t>(B * cfg.vocab));
      SS_CUDA_CHECK(
          cudaMemcpyAsync(raw.data(), logits.get(), raw.size() * 2, cudaMemcpyDeviceToHost, s));
    }
    step_end.record(s);
    SS_CUDA_CHECK(cudaStreamSynchronize(s));
    r.gpu_ms = step_end.elapsed_ms_since(step_start);
    r.tokens.assign(st_sampled(), st_sampled() + B);
    if (prof.on) r.op_ms = collect_profile();
    if (return_logits) {
      r.logits.resize(raw.size());
      for (size_t i = 0; i < raw.size(); ++i) r.logits[i] = to_float(bf16_t{raw[i]});
    }
    return r;
  }
};

// ---- Engine ------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const ModelSource& source, const EngineOptions& options) {
  EngineOptions o = options;
  SS_REQUIRE(o.compute == DType::kI8 || o.compute == DType::kFP8E4M3 || o.compute == DType::kBF16,
             "engine: dtype " << dtype_name(o.compute) << " is not one of int8, fp8, bf16");
  SS_REQUIRE(o.max_batch >= 1 && o.max_tokens_per_step >= 1,
             "engine: max_batch and max_tokens_per_step must be >= 1");
  SS_REQUIRE(o.backend != GemmBackend::kCusparseLt || o.sparsity,
             "engine: the cusparselt backend needs a sparsity pattern (--sparsity 2:8)");
  // Everything about the source is checked (config, checkpoint tensors) before the GPU is used.
  std::unique_ptr<WeightSource> src = open_weight_source(source);
  if (auto slid = src->slid()) {
    SS_REQUIRE(o.backend == GemmBackend::kCusparseLt && o.sparsity == slid->sparsity &&
                   o.compute == slid->precision,
               "engine: " << source.dir.string() << " is a SlideSparse checkpoint at "
                          << slid->sparsity.name() << " " << dtype_name(slid->precision)
                          << "; run it with --backend cusparselt --sparsity "
                          << slid->sparsity.name() << " --dtype " << dtype_name(slid->precision));
  }
  if (o.compute != DType::kFP8E4M3 || o.backend != GemmBackend::kCublasLt) o.fast_accum = false;
  SS_REQUIRE_T(NotSupportedError, gpu_available(), "engine: no GPU");
  require_dtype_supported(o.compute);
  auto impl = std::make_unique<Impl>();
  impl->opt = o;
  impl->backend_text = engine_backend_name({o.backend, o.fast_accum});
  impl->load(*src);
  src.reset();
  impl->prepare_and_size();
  impl->size_kv_cache();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

const TransformerConfig& Engine::config() const { return impl_->cfg; }
const EngineOptions& Engine::options() const { return impl_->opt; }
const std::string& Engine::model_name() const { return impl_->name; }

EngineMemory Engine::memory() const {
  EngineMemory m;
  m.weight_bytes = impl_->weight_bytes;
  m.scratch_bytes = impl_->scratch_bytes;
  m.kv_cache_bytes = static_cast<int64_t>(impl_->kv.bytes());
  m.kv_cache_tokens = (impl_->kv_shape.num_pages - 1) * impl_->kv_shape.page_size;
  size_t free_b = 0, total_b = 0;
  SS_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  m.device_total_bytes = static_cast<int64_t>(total_b);
  m.device_free_bytes = static_cast<int64_t>(free_b);
  return m;
}

std::string Engine::describe() const {
  const Impl& i = *impl_;
  std::ostringstream os;
  os << i.name << " " << i.backend_text;
  if (i.opt.sparsity) os << " " << i.opt.sparsity->name();
  os << " " << dtype_name(i.opt.compute) << ", " << i.cfg.layers << " layers, epilogue "
     << epilogue_name(i.layers.front().qkv->epilogue()) << ", KV cache " << memory().kv_cache_tokens
     << " tokens";
  return os.str();
}

void Engine::start_batch(std::span<const int64_t> max_tokens) {
  Impl& i = *impl_;
  SS_REQUIRE(i.seqs.empty(), "start_batch: a batch is running; end_batch() first");
  const int64_t B = static_cast<int64_t>(max_tokens.size());
  SS_REQUIRE(B >= 1 && B <= i.opt.max_batch,
             "start_batch: " << B << " sequences; the engine was sized for 1.." << i.opt.max_batch);
  int64_t pages = 0;
  for (int64_t t : max_tokens) {
    SS_REQUIRE(t >= 1 && t <= i.cfg.max_positions, "start_batch: a sequence of "
                                                       << t << " tokens; the model holds 1.."
                                                       << i.cfg.max_positions);
    pages += (t + i.kv_shape.page_size - 1) / i.kv_shape.page_size;
  }
  SS_REQUIRE(pages <= static_cast<int64_t>(i.free_pages.size()),
             "start_batch: the batch needs " << pages * i.kv_shape.page_size << " KV-cache tokens ("
                                             << pages << " pages); the cache holds "
                                             << i.free_pages.size() * i.kv_shape.page_size
                                             << " tokens");
  for (int64_t t : max_tokens) {
    Impl::Sequence q;
    q.reserved = t;
    const int64_t n = (t + i.kv_shape.page_size - 1) / i.kv_shape.page_size;
    for (int64_t p = 0; p < n; ++p) {
      q.pages.push_back(i.free_pages.back());
      i.free_pages.pop_back();
    }
    i.seqs.push_back(std::move(q));
  }
  i.prefilled = false;
}

void Engine::end_batch() {
  Impl& i = *impl_;
  for (auto& q : i.seqs) i.free_pages.insert(i.free_pages.end(), q.pages.begin(), q.pages.end());
  i.seqs.clear();
  i.prefilled = false;
}

int64_t Engine::batch_size() const { return static_cast<int64_t>(impl_->seqs.size()); }

std::vector<int64_t> Engine::sequence_lengths() const {
  std::vector<int64_t> out;
  for (const auto& q : impl_->seqs) out.push_back(q.length);
  return out;
}

StepResult Engine::prefill(std::span<const std::vector<int32_t>> prompts, bool return_logits) {
  Impl& i = *impl_;
  const int64_t B = static_cast<int64_t>(i.seqs.size());
  SS_REQUIRE(B > 0, "prefill: no batch; start_batch() first");
  SS_REQUIRE(static_cast<int64_t>(prompts.size()) == B,
             "prefill: " << prompts.size() << " prompts for a batch of " << B);
  int64_t T = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const auto& q = i.seqs[static_cast<size_t>(b)];
    SS_REQUIRE(!p.empty(), "prefill: prompt " << b << " is empty");
    SS_REQUIRE(q.length + static_cast<int64_t>(p.size()) <= q.reserved,
               "prefill: sequence " << b << " would hold " << q.length + p.size()
                                    << " tokens; start_batch reserved " << q.reserved);
    for (int32_t t : p)
      SS_REQUIRE(t >= 0 && t < i.cfg.vocab, "prefill: token id " << t << " of prompt " << b
                                                                 << " is outside [0, "
                                                                 << i.cfg.vocab << ")");
    T += static_cast<int64_t>(p.size());
  }
  SS_REQUIRE(T <= i.opt.max_tokens_per_step,
             "prefill: " << T << " tokens in one step; the engine was sized for "
                         << i.opt.max_tokens_per_step << " (max_tokens_per_step)");
  int64_t row = 0;
  std::vector<int64_t> queries, after;
  std::vector<const Impl::Sequence*> owners;
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    auto& q = i.seqs[static_cast<size_t>(b)];
    for (size_t t = 0; t < p.size(); ++t, ++row) {
      const int64_t pos = q.length + static_cast<int64_t>(t);
      i.st_tokens()[row] = p[t];
      i.st_positions()[row] = static_cast<int32_t>(pos);
      i.st_slots()[row] = i.slot_of(q, pos);
    }
    i.st_last()[b] = static_cast<int32_t>(row - 1);
    queries.push_back(static_cast<int64_t>(p.size()));
    after.push_back(q.length + static_cast<int64_t>(p.size()));
    owners.push_back(&q);
  }
  cudaStream_t s = i.stream.get();
  i.plan(*i.prefill_attn, queries, after, owners);
  i.prof.on = i.opt.profile_ops;
  i.step_start.record(s);
  SS_CUDA_CHECK(
      cudaMemcpyAsync(i.tokens_dev.get(), i.st_tokens(), T * 4, cudaMemcpyHostToDevice, s));
  SS_CUDA_CHECK(
      cudaMemcpyAsync(i.positions_dev.get(), i.st_positions(), T * 4, cudaMemcpyHostToDevice, s));
  SS_CUDA_CHECK(cudaMemcpyAsync(i.slots_dev.get(), i.st_slots(), T * 8, cudaMemcpyHostToDevice, s));
  SS_CUDA_CHECK(
      cudaMemcpyAsync(i.last_rows_dev.get(), i.st_last(), B * 4, cudaMemcpyHostToDevice, s));
  i.forward(T, B, *i.prefill_attn);
  StepResult r = i.finish_step(B, return_logits);
  for (int64_t b = 0; b < B; ++b)
    i.seqs[static_cast<size_t>(b)].length = after[static_cast<size_t>(b)];
  i.prefilled = true;
  return r;
}

StepResult Engine::decode(bool return_logits) {
  Impl& i = *impl_;
  const int64_t B = static_cast<int64_t>(i.seqs.size());
  SS_REQUIRE(B > 0 && i.prefilled, "decode: prefill the batch first");
  for (int64_t b = 0; b < B; ++b) {
    const auto& q = i.seqs[static_cast<size_t>(b)];
    SS_REQUIRE(q.length + 1 <= q.reserved, "decode: sequence "
                                               << b << " is at " << q.length
                                               << " tokens, all start_batch reserved");
  }
  const int64_t Bp = i.decode_pad(B);
  std::vector<int64_t> queries(static_cast<size_t>(Bp), 1), after;
  std::vector<const Impl::Sequence*> owners;
  for (int64_t b = 0; b < Bp; ++b) {
    if (b < B) {
      const auto& q = i.seqs[static_cast<size_t>(b)];
      i.st_positions()[b] = static_cast<int32_t>(q.length);
      i.st_slots()[b] = i.slot_of(q, q.length);
      after.push_back(q.length + 1);
      owners.push_back(&q);
    } else {
      i.st_positions()[b] = 0;
      i.st_slots()[b] = -1;  // padding rows write no KV
      after.push_back(1);
      owners.push_back(nullptr);
    }
    i.st_last()[b] = static_cast<int32_t>(b);
  }
  cudaStream_t s = i.stream.get();
  i.plan(*i.decode_attn, queries, after, owners);
  i.step_start.record(s);
  SS_CUDA_CHECK(
      cudaMemcpyAsync(i.positions_dev.get(), i.st_positions(), Bp * 4, cudaMemcpyHostToDevice, s));
  SS_CUDA_CHECK(
      cudaMemcpyAsync(i.slots_dev.get(), i.st_slots(), Bp * 8, cudaMemcpyHostToDevice, s));
  SS_CUDA_CHECK(
      cudaMemcpyAsync(i.last_rows_dev.get(), i.st_last(), Bp * 4, cudaMemcpyHostToDevice, s));
  auto body = [&i, Bp, s] {
    // the previous step's samples are this step's inputs, without a host round trip
    SS_CUDA_CHECK(cudaMemcpyAsync(i.tokens_dev.get(), i.sampled_dev.get(), Bp * 4,
                                  cudaMemcpyDeviceToDevice, s));
    i.forward(Bp, Bp, *i.decode_attn);
  };
  // A padded batch size seen for the first time runs eagerly (lazy module loading and library
  // setup happen outside capture) and is captured afterwards; later steps replay the graph.
  auto graph = i.decode_graphs.find(Bp);
  const bool replay = i.opt.cuda_graphs && !i.opt.profile_ops && graph != i.decode_graphs.end();
  i.prof.on = i.opt.profile_ops;
  if (replay)
    graph->second.launch(s);
  else
    body();
  StepResult r = i.finish_step(B, return_logits);
  for (auto& q : i.seqs) ++q.length;
  i.prof.on = false;
  if (i.opt.cuda_graphs && !i.opt.profile_ops && !replay)
    i.decode_graphs.emplace(Bp, CudaGraph::capture(s, body));
  return r;
}

}  // namespace slidesparse
