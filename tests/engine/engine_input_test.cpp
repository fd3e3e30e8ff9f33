// Bad input to the engine: a checkpoint that does not match its config (missing tensor, wrong
// shape, wrong dtype) is refused naming the tensor before anything reaches the GPU (so these run
// without one), a config of another family is refused, and so is a SlideSparse checkpoint asked
// to run at another pattern.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/temp_dir.h"
#include "engine_test_util.h"
#include "slidesparse/error.h"

namespace slidesparse::test {
namespace {

namespace fs = std::filesystem;

// A tiny HF checkpoint written by `slidesparse make-model` from a config.json.
fs::path make_checkpoint(const fs::path& dir, const TransformerConfig& c,
                         const std::string& extra = "") {
  fs::create_directories(dir / "cfg");
  write_text(dir / "cfg" / "config.json", hf_config_json(c).dump(1));
  const std::string cmd = std::string(SS_CLI_PATH) + " make-model --config " +
                          (dir / "cfg" / "config.json").string() + " --out " +
                          (dir / "model").string() + " " + extra + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return dir / "model";
}

std::string load_error(const ModelSource& source, EngineOptions o = {}) {
  try {
    Engine::load(source, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EngineInput, CheckpointWithFewerLayersThanItsConfigNamesTheMissingTensor) {
  TempDir tmp;
  TransformerConfig c = tiny_models()[2].config;
  const fs::path model = make_checkpoint(tmp.path(), c);
  c.layers = 3;  // the config now promises a layer the file does not hold
  write_text(model / "config.json", hf_config_json(c).dump(1));
  const std::string e = load_error(ModelSource::checkpoint(model));
  EXPECT_NE(e.find("model.layers.2."), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
}

TEST(EngineInput, CheckpointWithAnotherShapeNamesTheTensorAndBothShapes) {
  TempDir tmp;
  TransformerConfig c = tiny_models()[0].config;
  const fs::path model = make_checkpoint(tmp.path(), c);
  c.intermediate += 64;
  write_text(model / "config.json", hf_config_json(c).dump(1));
  const std::string e = load_error(ModelSource::checkpoint(model));
  EXPECT_NE(e.find("mlp.gate_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("has shape"), std::string::npos) << e;
}

TEST(EngineInput, ConfigOfAnotherFamilyIsRefused) {
  TempDir tmp;
  nlohmann::json j = hf_config_json(tiny_models()[0].config);
  j["model_type"] = "gpt2";
  write_text(tmp.path() / "config.json", j.dump(1));
  const std::string e = load_error(ModelSource::random((tmp.path() / "config.json").string()));
  EXPECT_NE(e.find("gpt2"), std::string::npos) << e;
}

TEST(EngineInput, SlideSparseCheckpointRefusesAnotherPattern) {
  TempDir tmp;
  const TransformerConfig c = tiny_models()[0].config;
  const fs::path model = make_checkpoint(tmp.path(), c);
  const std::string cmd = std::string(SS_CLI_PATH) + " convert --in " + model.string() + " --out " +
                          (tmp.path() / "slid").string() +
                          " --sparsity 2:8 --dtype int8 > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EngineOptions o;
  o.backend = GemmBackend::kCusparseLt;
  o.sparsity = Sparsity::parse("2:6");
  const std::string e = load_error(ModelSource::checkpoint(tmp.path() / "slid"), o);
  EXPECT_NE(e.find("--sparsity 2:8"), std::string::npos) << e;
}

TEST(EngineInput, CusparseltWithoutAPatternAndUnknownBackendsAreRefused) {
  EngineOptions o;
  o.backend = GemmBackend::kCusparseLt;
  EXPECT_NE(load_error(ModelSource::random("Llama3.2-1B"), o).find("needs a sparsity"),
            std::string::npos);
  EXPECT_THROW(parse_engine_backend("cublas"), Error);
  EXPECT_EQ(engine_backend_name(parse_engine_backend("cublaslt-fa")), "cublaslt-fa");
}

}  // namespace
}  // namespace slidesparse::test
