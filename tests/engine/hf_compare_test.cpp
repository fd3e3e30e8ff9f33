// The engine's BF16 logits for a `make-model` checkpoint against Hugging Face transformers'
// Qwen2ForCausalLM / LlamaForCausalLM on the same files (tests/engine/hf_logits.py). Skipped,
// with the reason, where python3 has no torch / transformers.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/gpu_skip.h"
#include "common/temp_dir.h"
#include "engine_test_util.h"

namespace slidesparse::test {
namespace {

namespace fs = std::filesystem;

class HfCompare : public testing::TestWithParam<TinyModel> {};

TEST_P(HfCompare, Bf16LogitsMatchTransformers) {
  SS_SKIP_WITHOUT_GPU();
  const TinyModel& m = GetParam();
  TempDir tmp;
  write_text(tmp.path() / "config.json", hf_config_json(m.config).dump(1));
  const fs::path model = tmp.path() / "model";
  std::string cmd = std::string(SS_CLI_PATH) + " make-model --config " +
                    (tmp.path() / "config.json").string() + " --out " + model.string() +
                    " --seed 5 > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::vector<int32_t> prompt = test_prompt(40, m.config.vocab, 21);
  std::string ids;
  for (int32_t t : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  const char* py = std::getenv("SS_PYTHON");
  const fs::path out = tmp.path() / "hf.f32";
  cmd = std::string(py ? py : "python3") + " " + SS_ENGINE_TEST_DIR + "/hf_logits.py " +
        model.string() + " " + out.string() + " " + ids + " 2> " + (tmp.path() / "py.err").string();
  const int rc = std::system(cmd.c_str());
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 3) {
    std::ifstream err(tmp.path() / "py.err");
    std::string why((std::istreambuf_iterator<char>(err)), {});
    GTEST_SKIP() << "python3 cannot import torch/transformers: " << why;
  }
  ASSERT_EQ(rc, 0) << cmd;
  std::vector<float> hf(static_cast<size_t>(m.config.vocab));
  std::ifstream(out, std::ios::binary).read(reinterpret_cast<char*>(hf.data()), hf.size() * 4);

  EngineOptions o = small_options(DType::kBF16, GemmBackend::kCublasLt, std::nullopt);
  auto engine = Engine::load(ModelSource::checkpoint(model), o);
  engine->start_batch(std::vector<int64_t>{64});
  const StepResult r = engine->prefill(one(prompt), true);
  const LogitStats s = compare_logits(r.logits, hf);
  std::printf("[ %s vs transformers ] %s\n", m.name.c_str(), describe(s).c_str());
  EXPECT_EQ(s.nonfinite, 0);
  EXPECT_LE(s.rms_diff, 0.03 * s.rms_ref) << describe(s);
  EXPECT_LE(s.max_abs, 0.15 * s.max_ref) << describe(s);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, HfCompare, testing::ValuesIn(tiny_models()),
                         [](const testing::TestParamInfo<TinyModel>& i) { return i.param.name; });

}  // namespace
}  // namespace slidesparse::test
