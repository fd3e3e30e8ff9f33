// CPU reference of the Llama / Qwen2 decoder (embedding, RMSNorm, fused QKV with optional bias,
// RoPE, causal GQA attention, o with the residual folded in, SwiGLU MLP, final norm, BF16 lm_head,
// greedy argmax). The GPU engine is checked against it, so it follows CONTRACTS.md "Rounding
// points of the model" step by step; every tensor between ops is bf16. Per decoder layer, h the
// bf16 residual stream [T, H]:
//   1. xn  = rms_norm_ref(h, input_layernorm)                    bf16 (two roundings, ops_ref.h)
//   2. qkv = Linear_qkv(xn)                                      bf16 [T, (Hq+2Hkv)D], one rounding
//      (rows q, k, v concatenated into one weight; bias inside; INT8/FP8: per-token scale of xn)
//   3. rope_apply_ref on the q heads and the k heads of qkv      bf16, one rounding per element
//   4. attn = bf16(attention_ref(q, k, v))  causal, GQA, scale float(1/sqrt(D))   bf16 [T, Hq*D]
//   5. h = bf16(float(h) + y_o), y_o = Linear_o(attn) before its rounding  (dequant_residual_ref)
//   6. xn2 = rms_norm_ref(h, post_attention_layernorm); gu = Linear_gate_up(xn2) bf16 [T, 2I]
//      (rows gate, then up)
//   7. a = silu_mul_ref(gu)                                      bf16 [T, I], one rounding
//   8. h = bf16(float(h) + y_down), y_down = Linear_down(a) before its rounding
// Final: xf = rms_norm_ref(h, norm); logits = bf16(xf . E^T), E = lm_head or the embedding when
// tied, fp32-accumulated (here: double, rounded to float, then to bf16). Embedding h0 = embed[id].
// Each Linear is linear_dense_ref / linear_slide_ref (linear_ref.h) with the mode's compute dtype;
// the 8-bit ones quantise the bf16 input per token and the float weight per output row.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/transformer_config.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

// One decoder layer, HF names (model.layers.<i>.*). Linear weights are float [out, in] (already
// pruned by the caller when a sparse mode is used; make_random_ref_weights keeps them bf16-exact
// as a bf16 checkpoint would be); biases float [out] or empty when the config has none.
struct RefLayerWeights {
  std::vector<bf16_t> input_layernorm;           // [H]
  std::vector<float> q_proj;                     // [Hq*D, H]
  std::vector<float> k_proj;                     // [Hkv*D, H]
  std::vector<float> v_proj;                     // [Hkv*D, H]
  std::vector<float> q_bias, k_bias, v_bias;     // [Hq*D], [Hkv*D], [Hkv*D] when qkv_bias
  std::vector<float> o_proj;                     // [H, Hq*D]
  std::vector<float> o_bias;                     // [H] when o_bias
  std::vector<bf16_t> post_attention_layernorm;  // [H]
  std::vector<float> gate_proj;                  // [I, H]
  std::vector<float> up_proj;                    // [I, H]
  std::vector<float> gate_bias, up_bias;         // [I] when mlp_bias
  std::vector<float> down_proj;                  // [H, I]
  std::vector<float> down_bias;                  // [H] when mlp_bias
};

struct RefModelWeights {
  std::vector<bf16_t> embed;  // model.embed_tokens [V, H]
  std::vector<RefLayerWeights> layers;
  std::vector<bf16_t> norm;     // model.norm [H]
  std::vector<bf16_t> lm_head;  // [V, H], bf16 (never quantised); empty when tied
};

// Throws Error naming the first tensor whose size does not match the config
// ("layers.1.k_proj holds 100 elements, expected [64, 128] = 8192").
void validate_ref_weights(const TransformerConfig& config, const RefModelWeights& weights);

// How every q/k/v, o, gate/up and down projection runs. compute: kBF16, kI8, kFP8E4M3 through
// linear_ref.h (dense, or SlideSparse when sparsity is set: the weights must then be Z:L), or
// kF32: x . W^T + b with the float weight unrounded and double sums, the "float-only" path tests
// compare against (no sparsity). lm_head is dense BF16 in every mode.
struct RefLinearMode {
  DType compute = DType::kBF16;
  std::optional<Sparsity> sparsity;
};

// Logits [T, V] (float values of the bf16 logits) of one sequence, every position, causal.
// Throws Error on a token outside [0, V), T < 1 or T > max_positions, bad weights.
std::vector<float> ref_model_logits(const TransformerConfig& config, const RefModelWeights& weights,
                                    RefLinearMode mode, std::span<const int32_t> tokens);

// Greedy generation: prefill the prompt, then new_tokens steps of one token each (with a KV
// cache, which gives bit for bit what recomputing the whole sequence gives, since every op but
// attention is row-wise and attention sums in a fixed order). Returns the new_tokens generated
// ids (argmax_ref of each step's last logits row), not the prompt.
std::vector<int32_t> ref_model_generate_greedy(const TransformerConfig& config,
                                               const RefModelWeights& weights, RefLinearMode mode,
                                               std::span<const int32_t> prompt, int64_t new_tokens);

// Incremental run of one sequence: step(tokens) appends them (positions length() ..) and returns
// their logits [tokens.size(), V] as bf16. Prefill = one step over the prompt, decode = steps of
// one token. Copies the config, holds a reference to the weights: they must outlive it. Throws
// PatternError naming the layer when a sparse mode meets a weight that is not Z:L.
class RefModelSession {
 public:
  RefModelSession(const TransformerConfig& config, const RefModelWeights& weights,
                  RefLinearMode mode);
  std::vector<bf16_t> step(std::span<const int32_t> tokens);
  int64_t length() const { return length_; }

 private:
  struct FusedLayer {
    std::vector<float> qkv, qkv_bias;          // [(Hq+2Hkv)D, H], [(Hq+2Hkv)D] or empty
    std::vector<float> gate_up, gate_up_bias;  // [2I, H], [2I] or empty
  };
  TransformerConfig config_;
  const RefModelWeights& weights_;
  RefLinearMode mode_;
  std::vector<FusedLayer> fused_;
  std::vector<std::vector<bf16_t>> k_cache_, v_cache_;  // per layer [length, Hkv*D]
  std::vector<float> cos_sin_;                          // [rows, D], grown on demand
  int64_t length_ = 0;
};

// Deterministic random weights (a portable generator: the same on every platform and compiler),
// scaled like real models so activations stay O(1): linear weights and lm_head uniform in
// +-1/sqrt(in), biases +-0.1, norm weights in [0.8, 1.2], embedding +-1; every value
// bf16-representable. With `prune`, every linear weight (not lm_head) is pruned to Z:L along its
// input dimension by prune_magnitude (core/prune.h).
RefModelWeights make_random_ref_weights(const TransformerConfig& config, uint64_t seed,
                                        std::optional<Sparsity> prune);

}  // namespace slidesparse
