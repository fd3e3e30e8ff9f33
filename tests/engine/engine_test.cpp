// The engine on the GPU against the CPU reference model (core/model_ref.h) on tiny random models
// of both families: BF16 within a stated tolerance, INT8 / FP8 against the reference run with the
// same quantisation; INT8 SlideSparse == INT8 dense bit for bit; prefill/decode consistency,
// ragged batches, graph replay == eager, refusals.
#include <gtest/gtest.h>

#include <cstdio>

#include "common/gpu_skip.h"
#include "cuda/device_info.h"
#include "engine_test_util.h"
#include "slidesparse/error.h"

namespace slidesparse::test {
namespace {

struct RefCase {
  TinyModel model;
  DType compute;
  GemmBackend backend;
  std::optional<Sparsity> sparsity;
  double rms_tol;  // rms(engine - ref) <= rms_tol * rms(ref)
  double max_tol;  // max|engine - ref| <= max_tol * max|ref|
  Epilogue epilogue = Epilogue::kKernel;
};

std::string case_name(const testing::TestParamInfo<RefCase>& info) {
  const RefCase& c = info.param;
  std::string n = c.model.name + "_" + std::string(dtype_name(c.compute)) + "_" +
                  std::string(backend_name(c.backend));
  if (c.sparsity) n += "_" + c.sparsity->dir_name();
  if (c.epilogue == Epilogue::kFused) n += "_fused";
  return n;
}

void skip_unless_supported(DType compute) {
  if (compute == DType::kFP8E4M3) {
    const auto gpu = query_gpu();
    if (gpu && gpu->cc() < 89) GTEST_SKIP() << "fp8 needs compute capability >= 8.9";
  }
}

void PrintTo(const RefCase& c, std::ostream* os) { *os << case_name({c, 0}); }

class EngineVsReference : public testing::TestWithParam<RefCase> {};

// A ragged prefill (three prompts of different lengths in one step) and then decode steps; every
// step's logits of the sampled positions against the reference sessions fed the same tokens.
TEST_P(EngineVsReference, LogitsMatchTheCpuReference) {
  SS_SKIP_WITHOUT_GPU();
  const RefCase& c = GetParam();
  skip_unless_supported(c.compute);
  const TransformerConfig& cfg = c.model.config;
  const RefModelWeights w = make_random_ref_weights(cfg, 7, c.sparsity);
  EngineOptions opt = small_options(c.compute, c.backend, c.sparsity);
  opt.epilogue = c.epilogue;
  auto engine = Engine::load(ModelSource::from_host(cfg, w), opt);
  const RefLinearMode mode{c.compute, c.sparsity};

  const std::vector<std::vector<int32_t>> prompts{
      test_prompt(5, cfg.vocab, 1), test_prompt(17, cfg.vocab, 2), test_prompt(70, cfg.vocab, 3)};
  std::vector<RefModelSession> refs;
  for (size_t b = 0; b < prompts.size(); ++b) refs.emplace_back(cfg, w, mode);
  engine->start_batch(std::vector<int64_t>{80, 80, 80});
  StepResult r = engine->prefill(prompts, true);
  std::vector<float> want;
  for (size_t b = 0; b < prompts.size(); ++b) {
    const auto l = refs[b].step(prompts[b]);
    for (int64_t v = 0; v < cfg.vocab; ++v)
      want.push_back(to_float(l[(prompts[b].size() - 1) * cfg.vocab + v]));
  }
  for (int step = 0; step <= 4; ++step) {
    const LogitStats s = compare_logits(r.logits, want);
    std::printf("[ %s step %d ] %s\n", case_name({c, 0}).c_str(), step, describe(s).c_str());
    EXPECT_EQ(s.nonfinite, 0);
    EXPECT_LE(s.rms_diff, c.rms_tol * s.rms_ref) << "step " << step << ": " << describe(s);
    EXPECT_LE(s.max_abs, c.max_tol * s.max_ref) << "step " << step << ": " << describe(s);
    if (step == 4) break;
    const std::vector<int32_t> fed = r.tokens;
    r = engine->decode(true);
    want.clear();
    for (size_t b = 0; b < prompts.size(); ++b) {
      const auto l = refs[b].step(std::vector<int32_t>{fed[b]});
      for (int64_t v = 0; v < cfg.vocab; ++v) want.push_back(to_float(l[v]));
    }
  }
  engine->end_batch();
}

std::vector<RefCase> ref_cases() {
  std::vector<RefCase> out;
  for (const TinyModel& m : tiny_models()) {
    out.push_back({m, DType::kBF16, GemmBackend::kCublasLt, std::nullopt, 0.03, 0.15});
    out.push_back({m, DType::kI8, GemmBackend::kCublasLt, std::nullopt, 0.06, 0.25});
    out.push_back({m, DType::kI8, GemmBackend::kCusparseLt, Sparsity::parse("2:8"), 0.06, 0.25});
    out.push_back({m, DType::kFP8E4M3, GemmBackend::kCublasLt, std::nullopt, 0.08, 0.3});
  }
  const TinyModel& q = tiny_models()[3];
  out.push_back({q, DType::kFP8E4M3, GemmBackend::kCusparseLt, Sparsity::parse("2:6"), 0.08, 0.3});
  out.push_back({q, DType::kBF16, GemmBackend::kCusparseLt, Sparsity::parse("2:10"), 0.03, 0.15});
  // The library epilogue (the engine's default): one more bf16 rounding where a residual is added.
  for (const char* p : {"2:4", "2:8"}) {
    out.push_back({q, DType::kI8, GemmBackend::kCusparseLt, Sparsity::parse(p), 0.06, 0.25,
                   Epilogue::kFused});
    out.push_back({q, DType::kFP8E4M3, GemmBackend::kCusparseLt, Sparsity::parse(p), 0.08, 0.3,
                   Epilogue::kFused});
  }
  out.push_back(
      {q, DType::kFP8E4M3, GemmBackend::kCublasLt, std::nullopt, 0.08, 0.3, Epilogue::kFused});
  return out;
}

INSTANTIATE_TEST_SUITE_P(TinyModels, EngineVsReference, testing::ValuesIn(ref_cases()), case_name);

// ---- INT8 SlideSparse == INT8 dense, bit for bit, on the same pruned weights ---------------

class SparseEqualsDense : public testing::TestWithParam<std::string> {};

TEST_P(SparseEqualsDense, Int8LogitsBitForBit) {
  SS_SKIP_WITHOUT_GPU();
  const Sparsity sp = Sparsity::parse(GetParam());
  for (const TinyModel& m : {tiny_models()[0], tiny_models()[3]}) {
    const RefModelWeights w = make_random_ref_weights(m.config, 11, sp);
    auto dense = Engine::load(ModelSource::from_host(m.config, w),
                              small_options(DType::kI8, GemmBackend::kCublasLt, sp));
    auto sparse = Engine::load(ModelSource::from_host(m.config, w),
                               small_options(DType::kI8, GemmBackend::kCusparseLt, sp));
    const std::vector<std::vector<int32_t>> prompts{test_prompt(9, m.config.vocab, 4),
                                                    test_prompt(33, m.config.vocab, 5)};
    dense->start_batch(std::vector<int64_t>{48, 48});
    sparse->start_batch(std::vector<int64_t>{48, 48});
    StepResult a = dense->prefill(prompts, true), b = sparse->prefill(prompts, true);
    for (int step = 0; step < 6; ++step) {
      ASSERT_EQ(a.tokens, b.tokens) << m.name << " step " << step;
      ASSERT_EQ(a.logits.size(), b.logits.size());
      size_t diff = 0;
      for (size_t i = 0; i < a.logits.size(); ++i)
        diff += std::memcmp(&a.logits[i], &b.logits[i], sizeof(float)) != 0;
      EXPECT_EQ(diff, 0u) << m.name << " " << sp.name() << " step " << step << ": " << diff
                          << " logits differ";
      a = dense->decode(true);
      b = sparse->decode(true);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Patterns, SparseEqualsDense, testing::Values("2:4", "2:6", "2:8", "2:10"),
                         [](const testing::TestParamInfo<std::string>& i) {
                           return "p" + Sparsity::parse(i.param).dir_name();
                         });

// ---- consistency ---------------------------------------------------------------------------

// Greedy: prefill then 32 decode steps gives the tokens a prefill over the whole sequence gives.
TEST(EngineConsistency, PrefillThenDecodeEqualsPrefillOfTheWholeSequence) {
  SS_SKIP_WITHOUT_GPU();
  const TinyModel m = tiny_models()[2];
  const RefModelWeights w = make_random_ref_weights(m.config, 13, std::nullopt);
  auto engine = Engine::load(ModelSource::from_host(m.config, w),
                             small_options(DType::kBF16, GemmBackend::kCublasLt, std::nullopt));
  std::vector<int32_t> seq = test_prompt(12, m.config.vocab, 6);
  engine->start_batch(std::vector<int64_t>{64});
  std::vector<int32_t> generated{engine->prefill(one(seq)).tokens[0]};
  for (int i = 1; i < 32; ++i) generated.push_back(engine->decode().tokens[0]);
  engine->end_batch();
  int checked = 0;
  for (int k : {1, 8, 16, 31}) {
    std::vector<int32_t> whole = seq;
    whole.insert(whole.end(), generated.begin(), generated.begin() + k);
    engine->start_batch(std::vector<int64_t>{64});
    EXPECT_EQ(engine->prefill(one(whole)).tokens[0], generated[k]) << "after " << k;
    engine->end_batch();
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

// Sequences of different lengths in one prefill step give what each gives alone.
TEST(EngineConsistency, RaggedPrefillEqualsEachSequenceAlone) {
  SS_SKIP_WITHOUT_GPU();
  const TinyModel m = tiny_models()[3];
  const RefModelWeights w = make_random_ref_weights(m.config, 17, std::nullopt);
  auto engine = Engine::load(ModelSource::from_host(m.config, w),
                             small_options(DType::kI8, GemmBackend::kCublasLt, std::nullopt));
  const std::vector<std::vector<int32_t>> prompts{
      test_prompt(3, m.config.vocab, 7), test_prompt(40, m.config.vocab, 8),
      test_prompt(1, m.config.vocab, 9), test_prompt(100, m.config.vocab, 10)};
  engine->start_batch(std::vector<int64_t>{128, 128, 128, 128});
  const StepResult together = engine->prefill(prompts, true);
  engine->end_batch();
  const int64_t V = m.config.vocab;
  for (size_t b = 0; b < prompts.size(); ++b) {
    engine->start_batch(std::vector<int64_t>{128});
    const StepResult alone = engine->prefill(one(prompts[b]), true);
    engine->end_batch();
    EXPECT_EQ(alone.tokens[0], together.tokens[b]) << "sequence " << b;
    const std::vector<float> part(together.logits.begin() + b * V,
                                  together.logits.begin() + (b + 1) * V);
    const LogitStats s = compare_logits(part, alone.logits);
    std::printf("[ ragged seq %zu ] %s\n", b, describe(s).c_str());
    EXPECT_LE(s.rms_diff, 0.01 * s.rms_ref) << "sequence " << b << ": " << describe(s);
  }
}

// Decode replayed from CUDA graphs gives the eager decode's logits bit for bit, also for a
// batch that is padded (3 sequences run at the padded size 4).
TEST(EngineConsistency, GraphReplayedDecodeEqualsEagerDecode) {
  SS_SKIP_WITHOUT_GPU();
  const TinyModel m = tiny_models()[1];
  const RefModelWeights w = make_random_ref_weights(m.config, 19, Sparsity::parse("2:8"));
  EngineOptions o = small_options(DType::kI8, GemmBackend::kCusparseLt, Sparsity::parse("2:8"));
  auto graphs = Engine::load(ModelSource::from_host(m.config, w), o);
  o.cuda_graphs = false;
  auto eager = Engine::load(ModelSource::from_host(m.config, w), o);
  const std::vector<std::vector<int32_t>> prompts{test_prompt(6, m.config.vocab, 11),
                                                  test_prompt(20, m.config.vocab, 12),
                                                  test_prompt(2, m.config.vocab, 13)};
  for (auto* e : {graphs.get(), eager.get()}) {
    e->start_batch(std::vector<int64_t>{64, 64, 64});
    e->prefill(prompts);
  }
  for (int step = 0; step < 12; ++step) {
    const StepResult a = graphs->decode(true), b = eager->decode(true);
    ASSERT_EQ(a.tokens, b.tokens) << "step " << step;
    EXPECT_EQ(0, std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * 4))
        << "step " << step;
  }
}

// ---- refusals ------------------------------------------------------------------------------

TEST(EngineRefusals, RequestLargerThanTheKvCacheIsRefusedBeforeAnyWork) {
  SS_SKIP_WITHOUT_GPU();
  const TinyModel m = tiny_models()[0];
  const RefModelWeights w = make_random_ref_weights(m.config, 23, std::nullopt);
  EngineOptions o = small_options(DType::kBF16, GemmBackend::kCublasLt, std::nullopt);
  o.kv_cache_tokens = 256;
  auto engine = Engine::load(ModelSource::from_host(m.config, w), o);
  try {
    engine->start_batch(std::vector<int64_t>{200, 200});
    FAIL() << "a batch of 400 tokens was accepted by a 256-token cache";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the cache holds"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine->batch_size(), 0);
  EXPECT_THROW(engine->start_batch(std::vector<int64_t>(9, 8)), Error);  // max_batch 8
  engine->start_batch(std::vector<int64_t>{100, 100});                   // still usable
  const std::vector<std::vector<int32_t>> bad{{1, 2}, {5, 1000}};
  EXPECT_THROW(engine->prefill(bad), Error);  // token id outside the vocabulary
  EXPECT_THROW(engine->decode(), Error);      // nothing prefilled
  const std::vector<std::vector<int32_t>> ok{std::vector<int32_t>(100, 3), {4}};
  const StepResult r = engine->prefill(ok);
  EXPECT_EQ(r.tokens.size(), 2u);
  EXPECT_THROW(engine->decode(), Error);  // sequence 0 is at its reservation
}

}  // namespace
}  // namespace slidesparse::test
