// HF tensor layout per config, linear-name recognition, FNV-1a 64 reference values and the
// slidesparse.json round trip with its validation.
#include "io/hf_layout.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "io/checksum.h"
#include "io/slide_manifest.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(HfLayout, Llama1BHasTheSeedShapesAndTiedHead) {
  const ModelConfig c = resolve_model("Llama3.2-1B");
  const auto layout = hf_tensor_layout(c);
  // embed + 16 * (2 norms + 7 linears) + final norm; tied: no lm_head.
  EXPECT_EQ(layout.size(), 1u + 16u * 9u + 1u);
  int64_t params = 0;
  std::set<std::string> names;
  for (const auto& t : layout) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    params += n;
    names.insert(t.name);
  }
  EXPECT_EQ(names.size(), layout.size());
  EXPECT_EQ(params, 1235814400);  // Llama 3.2 1B
  EXPECT_FALSE(names.contains("lm_head.weight"));
  const auto& k = *std::find_if(layout.begin(), layout.end(), [](const HfTensor& t) {
    return t.name == "model.layers.3.self_attn.k_proj.weight";
  });
  EXPECT_EQ(k.shape, (std::vector<int64_t>{512, 2048}));
  EXPECT_EQ(k.role, HfTensorRole::kLinearWeight);
}

TEST(HfLayout, Qwen2HasQkvBiasAndLmHead) {
  const ModelConfig c = resolve_model("Qwen2.5-7B");
  const auto layout = hf_tensor_layout(c);
  std::set<std::string> names;
  for (const auto& t : layout) names.insert(t.name);
  EXPECT_TRUE(names.contains("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_TRUE(names.contains("model.layers.27.self_attn.v_proj.bias"));
  EXPECT_FALSE(names.contains("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_TRUE(names.contains("lm_head.weight"));
}

TEST(HfLayout, LinearNames) {
  auto a = parse_linear_weight_name("model.layers.12.mlp.down_proj.weight");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->layer, 12);
  EXPECT_EQ(a->projection, "down_proj");
  EXPECT_TRUE(parse_linear_weight_name("model.layers.0.self_attn.o_proj.weight").has_value());
  for (const char* no :
       {"model.layers.0.self_attn.q_proj.bias", "model.layers.0.input_layernorm.weight",
        "model.embed_tokens.weight", "lm_head.weight", "model.layers.x.mlp.up_proj.weight",
        "model.layers.1.mlp.up_proj.weight_scale", "model.layers.1.mlp.fc.weight"})
    EXPECT_FALSE(parse_linear_weight_name(no).has_value()) << no;
}

TEST(Checksum, Fnv1a64ReferenceValues) {
  Fnv1a64 empty;
  EXPECT_EQ(empty.hex(), "cbf29ce484222325");
  Fnv1a64 a;
  const std::string text = "a";
  a.update(std::as_bytes(std::span(text.data(), text.size())));
  EXPECT_EQ(a.hex(), "af63dc4c8601ec8c");
  Fnv1a64 foobar;
  const std::string f = "foobar";
  foobar.update(std::as_bytes(std::span(f.data(), f.size())));
  EXPECT_EQ(foobar.hex(), "85944171f73967e8");
  const auto path = std::filesystem::temp_directory_path() / "ss_fnv_test.bin";
  std::ofstream(path, std::ios::binary) << "foobar";
  EXPECT_EQ(fnv1a64_file_hex(path), "85944171f73967e8");
  std::filesystem::remove(path);
}

TEST(SlideManifest, RoundTripAndValidation) {
  SlideManifest m;
  m.tool_version = "0.1.0";
  m.sparsity = Sparsity::from_block(8);
  m.precision = DType::kI8;
  m.source_files = {{"model.safetensors", "0123456789abcdef"}};
  m.source_checksum = SlideManifest::combine_checksums(m.source_files);
  m.tensors.push_back({"model.layers.0.mlp.down_proj.weight",
                       "model.layers.0.mlp.down_proj.weight_scale", 64, 100,
                       Sparsity::from_block(8).k_slide(100), DType::kBF16});
  const nlohmann::json j = m.to_json();
  const SlideManifest back = SlideManifest::from_json(j, "t");
  EXPECT_EQ(back.sparsity, m.sparsity);
  EXPECT_EQ(back.precision, DType::kI8);
  ASSERT_EQ(back.tensors.size(), 1u);
  EXPECT_EQ(back.tensors[0].k_slide, 160);
  EXPECT_EQ(back.tensors[0].scale, m.tensors[0].scale);
  EXPECT_EQ(back.source_checksum, m.source_checksum);

  nlohmann::json bad = j;
  bad["tensors"]["model.layers.0.mlp.down_proj.weight"]["k_slide"] = 150;
  EXPECT_THROW(SlideManifest::from_json(bad, "t"), FormatError);
  bad = j;
  bad.erase("sparsity");
  EXPECT_THROW(SlideManifest::from_json(bad, "t"), FormatError);
  bad = j;
  bad["format_version"] = 99;
  EXPECT_THROW(SlideManifest::from_json(bad, "t"), FormatError);
  bad = j;
  bad["tensors"]["model.layers.0.mlp.down_proj.weight"].erase("scale");
  EXPECT_THROW(SlideManifest::from_json(bad, "t"), FormatError);
}

}  // namespace
}  // namespace slidesparse
