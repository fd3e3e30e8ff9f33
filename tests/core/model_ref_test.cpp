// Reference model on tiny random configs of both families (head_dim 64 and 128, GQA groups 1, 5
// and 7, Llama 3 rope scaling, Qwen2 biases, tied embeddings): finite and deterministic, causal,
// INT8 SlideSparse == INT8 dense bit for bit for every pattern, 8-bit and BF16 paths close to the
// float-only path, greedy generation consistent with the logits, one layer spelled out by hand.
#include "slidesparse/core/model_ref.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/model_ref_golden.h"
#include "slidesparse/core/attention_ref.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/linear_ref.h"
#include "slidesparse/core/ops_ref.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TransformerConfig llama_group1() {  // D 64, Hq = Hkv = 2
  TransformerConfig c;
  c.family = ModelFamily::kLlama;
  c.hidden = 128;
  c.intermediate = 320;
  c.num_q_heads = 2;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.layers = 2;
  c.vocab = 256;
  c.rms_eps = 1e-5;
  c.rope = RopeParams{10000.0, 64, std::nullopt, ""};
  c.max_positions = 64;
  return c;
}

TransformerConfig qwen2_group5() {  // D 64, Hq 5, Hkv 1, biases, tied embedding
  TransformerConfig c;
  c.family = ModelFamily::kQwen2;
  c.hidden = 192;
  c.intermediate = 384;
  c.num_q_heads = 5;
  c.num_kv_heads = 1;
  c.head_dim = 64;
  c.layers = 2;
  c.vocab = 512;
  c.rms_eps = 1e-6;
  c.rope = RopeParams{1000000.0, 64, std::nullopt, ""};
  c.max_positions = 64;
  c.qkv_bias = true;
  c.tie_word_embeddings = true;
  return c;
}

TransformerConfig llama3_group7() {  // D 128, Hq 7, Hkv 1, llama3 rope scaling, all biases
  TransformerConfig c;
  c.family = ModelFamily::kLlama;
  c.hidden = 256;
  c.intermediate = 512;
  c.num_q_heads = 7;
  c.num_kv_heads = 1;
  c.head_dim = 128;
  c.layers = 2;
  c.vocab = 384;
  c.rms_eps = 1e-5;
  // A short original context so every regime of the scaling shows up in 128 dimensions.
  c.rope = RopeParams{500000.0, 128, Llama3RopeScaling{8.0, 1.0, 4.0, 32}, "llama3"};
  c.max_positions = 64;
  c.o_bias = true;
  c.mlp_bias = true;
  return c;
}

struct NamedConfig {
  const char* name;
  TransformerConfig config;
};

std::vector<NamedConfig> configs() {
  return {{"llama_g1_d64", llama_group1()},
          {"qwen2_g5_d64_tied_bias", qwen2_group5()},
          {"llama3_g7_d128_scaled", llama3_group7()}};
}

std::vector<int32_t> tokens_for(const TransformerConfig& c, int64_t n, uint32_t salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + salt * 131 + 3) % c.vocab);
  return t;
}

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s / double(v.size()));
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

const RefLinearMode kF32{DType::kF32, std::nullopt};
const RefLinearMode kBF16{DType::kBF16, std::nullopt};
const RefLinearMode kI8{DType::kI8, std::nullopt};
const RefLinearMode kFP8{DType::kFP8E4M3, std::nullopt};

TEST(ModelRef, LogitsAreFiniteAndDeterministic) {
  for (const auto& [name, c] : configs()) {
    SCOPED_TRACE(name);
    const auto w = make_random_ref_weights(c, 42, std::nullopt);
    const auto w2 = make_random_ref_weights(c, 42, std::nullopt);
    EXPECT_EQ(w.layers[1].down_proj, w2.layers[1].down_proj);
    EXPECT_NE(make_random_ref_weights(c, 43, std::nullopt).layers[0].q_proj, w.layers[0].q_proj);
    const auto tokens = tokens_for(c, 9, 1);
    for (const RefLinearMode& mode : {kBF16, kI8, kFP8}) {
      const auto logits = ref_model_logits(c, w, mode, tokens);
      ASSERT_EQ(int64_t(logits.size()), 9 * c.vocab);
      for (float x : logits) ASSERT_TRUE(std::isfinite(x));
      const double r = rms(logits);
      EXPECT_GT(r, 0.05);  // O(1) activations: neither vanishing nor exploding
      EXPECT_LT(r, 20.0);
      EXPECT_EQ(ref_model_logits(c, w2, mode, tokens), logits);
    }
  }
}

TEST(ModelRef, PrefixLogitsAreTheFirstRowsOfTheFullSequence) {
  for (const auto& [name, c] : configs()) {
    SCOPED_TRACE(name);
    const auto w = make_random_ref_weights(c, 7, std::nullopt);
    const auto tokens = tokens_for(c, 13, 2);
    for (const RefLinearMode& mode : {kBF16, kI8}) {
      const auto full = ref_model_logits(c, w, mode, tokens);
      const auto prefix = ref_model_logits(c, w, mode, std::span(tokens).first(5));
      ASSERT_EQ(int64_t(prefix.size()), 5 * c.vocab);
      EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), full.begin()));
      // A later token changes only later rows.
      auto changed = tokens;
      changed[8] = (changed[8] + 1) % int32_t(c.vocab);
      const auto other = ref_model_logits(c, w, mode, changed);
      EXPECT_TRUE(std::equal(full.begin(), full.begin() + 8 * c.vocab, other.begin()));
      EXPECT_FALSE(std::equal(full.begin() + 8 * c.vocab, full.end(), other.begin() + 8 * c.vocab));
    }
  }
}

TEST(ModelRef, IncrementalStepsEqualOnePass) {
  const auto c = qwen2_group5();
  const auto w = make_random_ref_weights(c, 9, std::nullopt);
  const auto tokens = tokens_for(c, 10, 3);
  const auto full = ref_model_logits(c, w, kI8, tokens);
  RefModelSession session(c, w, kI8);
  std::vector<float> pieces;
  for (auto [begin, end] : {std::pair{0, 4}, std::pair{4, 5}, std::pair{5, 10}}) {
    const auto part = session.step(std::span(tokens).subspan(begin, end - begin));
    for (bf16_t b : part) pieces.push_back(to_float(b));
  }
  EXPECT_EQ(session.length(), 10);
  EXPECT_EQ(pieces, full);
}

TEST(ModelRef, Int8SlideSparseEqualsInt8DenseBitForBit) {
  for (int block : {4, 6, 8, 10}) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& [name, c] : configs()) {
      SCOPED_TRACE(std::string(name) + " " + sp.name());
      const auto w = make_random_ref_weights(c, 100 + block, sp);
      const auto tokens = tokens_for(c, 6, block);
      const auto dense = ref_model_logits(c, w, kI8, tokens);
      const auto slide = ref_model_logits(c, w, RefLinearMode{DType::kI8, sp}, tokens);
      EXPECT_EQ(slide, dense);
    }
  }
}

TEST(ModelRef, SlideSparseBf16AndFp8StayCloseToDense) {
  // Same products in another order: BF16 / FP8 SlideSparse differ from dense by float rounding
  // of the accumulator only, which bf16 hides almost everywhere.
  const auto c = llama_group1();
  const Sparsity sp = Sparsity::from_block(8);
  const auto w = make_random_ref_weights(c, 5, sp);
  const auto tokens = tokens_for(c, 6, 4);
  for (DType dt : {DType::kBF16, DType::kFP8E4M3}) {
    const auto dense = ref_model_logits(c, w, RefLinearMode{dt, std::nullopt}, tokens);
    const auto slide = ref_model_logits(c, w, RefLinearMode{dt, sp}, tokens);
    EXPECT_LE(max_abs_diff(slide, dense), 0.02 * rms(dense)) << dtype_name(dt);
  }
}

// Moves every linear weight off the bf16 grid (relative changes below 0.4%), so that the float-only
// path, which keeps float weights, differs from the BF16 path, which rounds them.
void perturb_linear_weights(RefModelWeights& w) {
  int64_t i = 0;
  for (auto& l : w.layers)
    for (auto* m :
         {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj})
      for (float& x : *m) x *= 1.0f + 0.004f * float(std::sin(double(++i)));
}

TEST(ModelRef, QuantisedPathsAreCloseToTheFloatOnlyPath) {
  // Stated tolerances, max |logit - float-only logit| relative to the float-only logits' rms:
  // BF16 5%, INT8 8%, FP8 E4M3 20% (measured on these configs: 1.7-2.7%, 3.3-3.4%, 10-12%).
  for (const auto& [name, c] : configs()) {
    SCOPED_TRACE(name);
    auto w = make_random_ref_weights(c, 11, std::nullopt);
    perturb_linear_weights(w);
    const auto tokens = tokens_for(c, 8, 5);
    const auto ref = ref_model_logits(c, w, kF32, tokens);
    const double scale = rms(ref);
    const struct {
      RefLinearMode mode;
      double tolerance;
    } cases[] = {{kBF16, 0.05}, {kI8, 0.08}, {kFP8, 0.20}};
    for (const auto& [mode, tolerance] : cases) {
      const double diff = max_abs_diff(ref_model_logits(c, w, mode, tokens), ref);
      EXPECT_LE(diff, tolerance * scale) << dtype_name(mode.compute) << ": " << diff / scale;
      EXPECT_GT(diff, 0.0) << dtype_name(mode.compute);  // the paths really differ
    }
  }
}

// The configs of tests/core/model_ref_check.py, which rebuilds the same random weights and runs
// the model in float64 the way HF writes it (rotate_half, repeat_kv, no intermediate rounding).
struct GoldenCase {
  const char* name;
  TransformerConfig config;
  uint64_t seed;
  std::vector<int32_t> tokens;
  std::vector<std::pair<int64_t, std::span<const double>>> rows;  // row, logits[row][0::4]
};

std::vector<GoldenCase> golden_cases() {
  TransformerConfig llama;
  llama.family = ModelFamily::kLlama;
  llama.hidden = 128;
  llama.intermediate = 256;
  llama.num_q_heads = 6;
  llama.num_kv_heads = 2;
  llama.head_dim = 64;
  llama.layers = 2;
  llama.vocab = 256;
  llama.rms_eps = 1e-5;
  llama.rope = RopeParams{500000.0, 64, Llama3RopeScaling{8.0, 1.0, 4.0, 32}, "llama3"};
  llama.max_positions = 16;
  llama.qkv_bias = llama.o_bias = llama.mlp_bias = true;
  TransformerConfig qwen;
  qwen.family = ModelFamily::kQwen2;
  qwen.hidden = 96;
  qwen.intermediate = 160;
  qwen.num_q_heads = 4;
  qwen.num_kv_heads = 2;
  qwen.head_dim = 32;
  qwen.layers = 2;
  qwen.vocab = 320;
  qwen.rms_eps = 1e-6;
  qwen.rope = RopeParams{1000000.0, 32, std::nullopt, ""};
  qwen.max_positions = 16;
  qwen.qkv_bias = true;
  qwen.tie_word_embeddings = true;
  using namespace golden;
  return {{"llama3_g3",
           llama,
           2024,
           {17, 200, 3, 99, 254, 42},
           {{0, kLlama3G3_row0}, {2, kLlama3G3_row2}, {5, kLlama3G3_row5}}},
          {"qwen2_g2_tied",
           qwen,
           77,
           {5, 319, 64, 0, 128},
           {{0, kQwen2G2Tied_row0}, {2, kQwen2G2Tied_row2}, {4, kQwen2G2Tied_row4}}}};
}

TEST(ModelRef, MatchesAnIndependentFloat64Implementation) {
  // Tolerance: max |diff| <= 3% of the golden row's rms (measured 0.8-1.5%: the reference rounds
  // every activation to bf16 between ops, the float64 model never does). A GQA mapping of
  // h % Hkv gives 75-256%, a RoPE sign error 7-12%.
  for (const auto& g : golden_cases()) {
    SCOPED_TRACE(g.name);
    const auto w = make_random_ref_weights(g.config, g.seed, std::nullopt);
    const auto logits = ref_model_logits(g.config, w, kF32, g.tokens);
    for (const auto& [row, want] : g.rows) {
      ASSERT_EQ(int64_t(want.size()), g.config.vocab / 4);
      double diff = 0, sum_sq = 0;
      for (size_t j = 0; j < want.size(); ++j) {
        const double got = logits[size_t(row * g.config.vocab) + 4 * j];
        diff = std::max(diff, std::fabs(got - want[j]));
        sum_sq += want[j] * want[j];
      }
      const double scale = std::sqrt(sum_sq / double(want.size()));
      EXPECT_LE(diff, 0.03 * scale) << "row " << row << ": " << diff / scale;
    }
  }
}

TEST(ModelRef, GreedyGenerationFollowsTheLogits) {
  const auto c = llama3_group7();
  const auto w = make_random_ref_weights(c, 3, std::nullopt);
  const auto prompt = tokens_for(c, 5, 6);
  const auto generated = ref_model_generate_greedy(c, w, kI8, prompt, 6);
  ASSERT_EQ(generated.size(), 6u);
  std::vector<int32_t> sequence = prompt;
  sequence.insert(sequence.end(), generated.begin(), generated.end() - 1);
  const auto logits = ref_model_logits(c, w, kI8, sequence);
  std::vector<bf16_t> logits_bf16;
  for (float x : logits) logits_bf16.push_back(bf16_from_float(x));
  const auto argmax = argmax_ref(logits_bf16, int64_t(sequence.size()), c.vocab);
  for (size_t i = 0; i < generated.size(); ++i)
    EXPECT_EQ(generated[i], argmax[prompt.size() - 1 + i]) << "step " << i;
  EXPECT_TRUE(ref_model_generate_greedy(c, w, kI8, prompt, 0).empty());
}

// One layer composed here from the op references with separate q, k, v and gate, up linears:
// the fused, residual-folded model must give the same logits bit for bit.
TEST(ModelRef, OneLayerSpelledOutByHand) {
  auto c = qwen2_group5();
  c.layers = 1;
  c.mlp_bias = true;
  c.o_bias = true;
  c.tie_word_embeddings = false;
  const auto w = make_random_ref_weights(c, 21, std::nullopt);
  const auto tokens = tokens_for(c, 7, 7);
  const int64_t t = 7, h = c.hidden, d = c.head_dim, q_dim = c.q_dim(), kv = c.kv_dim();
  const int64_t inter = c.intermediate;
  const float eps = float(c.rms_eps);
  const auto& l = w.layers[0];
  const auto lin = [&](std::span<const bf16_t> x, const std::vector<float>& wt,
                       const std::vector<float>& b, int64_t n, int64_t k) {
    return linear_dense_ref(LinearRefProblem{x, wt, b, t, n, k, DType::kI8});
  };
  auto h0 = embedding_ref(w.embed, c.vocab, h, tokens);
  const auto xn = rms_norm_ref(h0, t, h, l.input_layernorm, eps);
  auto q = lin(xn, l.q_proj, l.q_bias, q_dim, h).y_bf16;
  auto k = lin(xn, l.k_proj, l.k_bias, kv, h).y_bf16;
  const auto v = lin(xn, l.v_proj, l.v_bias, kv, h).y_bf16;
  std::vector<int32_t> pos(t);
  std::iota(pos.begin(), pos.end(), 0);
  const auto table = rope_cos_sin_table(c.rope, t);
  rope_apply_ref(q, t, c.num_q_heads, d, q_dim, pos, table);
  rope_apply_ref(k, t, c.num_kv_heads, d, kv, pos, table);
  const auto attn =
      to_bf16_vector(attention_ref(to_float_vector(q), to_float_vector(k), to_float_vector(v), t, t,
                                   c.num_q_heads, c.num_kv_heads, d, 0.125f, true));
  const auto o = lin(attn, l.o_proj, l.o_bias, h, q_dim);
  const auto h1 = add_residual_ref(o.y, h0);
  const auto xn2 = rms_norm_ref(h1, t, h, l.post_attention_layernorm, eps);
  const auto g = lin(xn2, l.gate_proj, l.gate_bias, inter, h).y_bf16;
  const auto u = lin(xn2, l.up_proj, l.up_bias, inter, h).y_bf16;
  std::vector<bf16_t> gu;
  for (int64_t i = 0; i < t; ++i) {
    gu.insert(gu.end(), g.begin() + i * inter, g.begin() + (i + 1) * inter);
    gu.insert(gu.end(), u.begin() + i * inter, u.begin() + (i + 1) * inter);
  }
  const auto a = silu_mul_ref(gu, t, inter);
  const auto down = lin(a, l.down_proj, l.down_bias, h, inter);
  const auto h2 = add_residual_ref(down.y, h1);
  const auto xf = rms_norm_ref(h2, t, h, w.norm, eps);
  const auto expect = to_float_vector(to_bf16_vector(gemm_bf16_ref(xf, w.lm_head, t, c.vocab, h)));
  EXPECT_EQ(ref_model_logits(c, w, kI8, tokens), expect);
}

TEST(ModelRef, BadInputIsRefusedNamingWhatIsWrong) {
  const auto c = qwen2_group5();
  auto w = make_random_ref_weights(c, 1, std::nullopt);
  const auto tokens = tokens_for(c, 4, 8);
  EXPECT_THROW(ref_model_logits(c, w, kBF16, std::vector<int32_t>{1, 512}), Error);
  EXPECT_THROW(ref_model_logits(c, w, kBF16, std::vector<int32_t>{}), Error);
  EXPECT_THROW(ref_model_logits(c, w, kBF16, std::vector<int32_t>(65, 1)), Error);
  EXPECT_THROW(ref_model_logits(c, w, RefLinearMode{DType::kF32, Sparsity::from_block(4)}, tokens),
               Error);
  EXPECT_THROW(ref_model_logits(c, w, RefLinearMode{DType::kF16, std::nullopt}, tokens),
               NotSupportedError);
  // Unpruned weights in a sparse mode: PatternError naming the layer.
  try {
    ref_model_logits(c, w, RefLinearMode{DType::kI8, Sparsity::from_block(8)}, tokens);
    FAIL() << "no throw";
  } catch (const PatternError& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.qkv"), std::string::npos) << e.what();
  }
  auto bad = w;
  bad.layers[1].k_proj.pop_back();
  try {
    ref_model_logits(c, bad, kBF16, tokens);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.1.k_proj"), std::string::npos) << e.what();
  }
  bad = w;
  bad.lm_head.resize(size_t(c.vocab * c.hidden));  // given although tied
  EXPECT_THROW(ref_model_logits(c, bad, kBF16, tokens), Error);
  auto bad_config = c;
  bad_config.num_kv_heads = 2;  // 5 % 2 != 0
  EXPECT_THROW(make_random_ref_weights(bad_config, 1, std::nullopt), Error);
  bad_config = c;
  bad_config.rope.rope_type = "dynamic";
  EXPECT_THROW(make_random_ref_weights(bad_config, 1, std::nullopt), NotSupportedError);
}

}  // namespace
}  // namespace slidesparse
