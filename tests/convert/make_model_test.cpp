// make-model: layout matches the config, shards and index are consistent, values are
// deterministic in the seed, --prune gives Z:L weights, --weight-quant gives W8A8 tensors.
#include "convert/make_model.h"

#include <gtest/gtest.h>

#include "convert/convert_test_util.h"
#include "io/hf_layout.h"
#include "io/model_config.h"
#include "io/tensor_data.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

class MakeModel : public test::ScratchDir {};

TEST_F(MakeModel, ShardsIndexAndConfig) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("qwen2")).string();
  mm.layers = 3;
  mm.out = dir_ / "m";
  mm.shards = 4;
  mm.dtype = DType::kF16;
  const MakeModelReport r = make_model(mm);
  EXPECT_EQ(r.shards, 4);
  const ModelConfig c = ModelConfig::load(mm.out);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.torch_dtype, DType::kF16);
  Checkpoint ckpt(mm.out);
  EXPECT_TRUE(ckpt.sharded());
  EXPECT_EQ(ckpt.files().size(), 4u);
  const auto layout = hf_tensor_layout(c);
  EXPECT_EQ(ckpt.tensor_names().size(), layout.size());
  for (const HfTensor& t : layout) {
    ASSERT_TRUE(ckpt.contains(t.name)) << t.name;
    EXPECT_EQ(ckpt.info(t.name).shape, t.shape);
    EXPECT_EQ(ckpt.info(t.name).dtype, DType::kF16);
  }
  EXPECT_EQ(std::stoull(ckpt.index_metadata().at("total_size")), r.bytes);
}

TEST_F(MakeModel, DeterministicInTheSeed) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "a";
  mm.seed = 3;
  make_model(mm);
  mm.out = dir_ / "b";
  make_model(mm);
  mm.out = dir_ / "c";
  mm.seed = 4;
  make_model(mm);
  Checkpoint a(dir_ / "a"), b(dir_ / "b"), c(dir_ / "c");
  const std::string name = "model.layers.1.mlp.gate_proj.weight";
  auto va = copy_values<uint16_t>(a.bytes(name));
  EXPECT_EQ(va, copy_values<uint16_t>(b.bytes(name)));
  EXPECT_NE(va, copy_values<uint16_t>(c.bytes(name)));
}

TEST_F(MakeModel, PrunedAndQuantised) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "m";
  mm.prune = Sparsity::from_block(6);
  mm.weight_quant = DType::kI8;
  make_model(mm);
  Checkpoint ckpt(mm.out);
  const std::string name = "model.layers.0.mlp.down_proj.weight";
  const TensorInfo& t = ckpt.info(name);
  EXPECT_EQ(t.dtype, DType::kI8);
  const auto codes = copy_values<int8_t>(ckpt.bytes(name));
  EXPECT_FALSE(find_pattern_violation<int8_t>(codes, t.shape[0], t.shape[1], *mm.prune));
  EXPECT_EQ(ckpt.info(name + "_scale").shape, (std::vector<int64_t>{t.shape[0], 1}));
  EXPECT_EQ(ckpt.info("model.norm.weight").dtype, DType::kBF16);
  std::ifstream in(mm.out / "config.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["quantization_config"]["format"], "int-quantized");
}

TEST_F(MakeModel, BadOptionsLeaveNothing) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "m";
  mm.dtype = DType::kI8;
  EXPECT_THROW(make_model(mm), Error);
  mm.dtype = DType::kBF16;
  mm.shards = 0;
  EXPECT_THROW(make_model(mm), Error);
  mm.shards = 1;
  mm.config = "Not-A-Model";
  EXPECT_THROW(make_model(mm), Error);
  EXPECT_FALSE(fs::exists(mm.out));
  mm.config = (dir_ / "tiny.json").string();
  make_model(mm);
  EXPECT_THROW(make_model(mm), Error);  // exists, no --overwrite
  mm.overwrite = true;
  make_model(mm);
  EXPECT_EQ(test::count_entries_with_prefix(dir_, "m."), 0);
}

}  // namespace
}  // namespace slidesparse
