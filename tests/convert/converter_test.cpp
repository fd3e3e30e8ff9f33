// Converter round trips on generated checkpoints (every source dtype, every output precision,
// patterns 2:4 ... 2:10, single file and sharded), verified both by `verify` and independently
// with the CPU core; --assume-pruned; atomic output; every bad source refused with a clear message.
#include "convert/converter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <set>
#include <tuple>

#include "common/gtest_printers.h"
#include "convert/convert_test_util.h"
#include "convert/make_model.h"
#include "convert/output_dir.h"
#include "convert/verify.h"
#include "io/hf_layout.h"
#include "io/slide_manifest.h"
#include "io/tensor_data.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

#define EXPECT_HAS(haystack, needle)                                    \
  do {                                                                  \
    std::string h_ = (haystack);                                        \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_; \
  } while (0)

// Source kinds: plain float dtypes, or compressed-tensors W8A8.
struct SourceKind {
  const char* label;
  DType dtype;
  std::optional<DType> weight_quant;
};
const SourceKind kSources[] = {{"bf16", DType::kBF16, {}},
                               {"fp16", DType::kF16, {}},
                               {"fp32", DType::kF32, {}},
                               {"w8a8int8", DType::kBF16, DType::kI8},
                               {"w8a8fp8", DType::kBF16, DType::kFP8E4M3}};

using RoundTripParam = std::tuple<int /*source*/, DType /*precision*/, int /*L*/, int /*shards*/>;

class RoundTrip : public ScratchDir, public ::testing::WithParamInterface<RoundTripParam> {};

TEST_P(RoundTrip, ConvertsAndVerifies) {
  const auto [source_index, precision, block, shards] = GetParam();
  const SourceKind& kind = kSources[source_index];
  const Sparsity sparsity = Sparsity::from_block(block);
  const std::string family = (block / 2) % 2 == 0 ? "llama" : "qwen2";

  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config(family, /*bias=*/true)).string();
  mm.out = dir_ / "src";
  mm.dtype = kind.dtype;
  mm.weight_quant = kind.weight_quant;
  mm.shards = shards;
  mm.seed = static_cast<uint64_t>(block * 10 + source_index);
  make_model(mm);
  std::ofstream(dir_ / "src" / "tokenizer.json") << R"({"model": "tiny"})";

  ConvertOptions opt;
  opt.in = dir_ / "src";
  opt.out = dir_ / "out";
  opt.sparsity = sparsity;
  opt.precision = precision;
  opt.threads = 2;
  const ConvertReport report = convert_checkpoint(opt);
  EXPECT_EQ(report.linear_weights, 14);
  EXPECT_EQ(test::count_entries_with_prefix(dir_, "out.tmp-"), 0);

  // Layout: names unchanged, W' [N, K'], scales F32 [N, 1], everything else copied.
  const SlideManifest manifest = SlideManifest::load(opt.out);
  EXPECT_EQ(manifest.sparsity, sparsity);
  EXPECT_EQ(manifest.precision, precision);
  EXPECT_EQ(manifest.tensors.size(), 14u);
  Checkpoint out(opt.out);
  Checkpoint src(opt.in);
  EXPECT_EQ(out.sharded(), shards > 1);
  EXPECT_EQ(out.files().size(), src.files().size());
  for (const SlidTensor& t : manifest.tensors) {
    const TensorInfo& info = out.info(t.name);
    EXPECT_EQ(info.dtype, precision);
    EXPECT_EQ(info.shape, (std::vector<int64_t>{t.n, sparsity.k_slide(t.k)}));
    EXPECT_EQ(src.info(t.name).shape, (std::vector<int64_t>{t.n, t.k}));
    if (precision == DType::kBF16) {
      EXPECT_TRUE(t.scale.empty());
      EXPECT_FALSE(out.contains(t.name + "_scale"));
    } else {
      EXPECT_EQ(t.scale, t.name + "_scale");
      EXPECT_EQ(out.info(t.scale).dtype, DType::kF32);
      EXPECT_EQ(out.info(t.scale).shape, (std::vector<int64_t>{t.n, 1}));
    }
  }
  EXPECT_TRUE(fs::exists(opt.out / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(opt.out / "config.json"));

  VerifyOptions vo;
  vo.dir = opt.out;
  vo.source = opt.in;
  const VerifyReport vr = verify_checkpoint(vo);
  EXPECT_EQ(vr.slid_tensors, 14);
  EXPECT_EQ(vr.compared_with_source, 14);
  EXPECT_TRUE(vr.checksum_checked);
  vo.source.reset();
  EXPECT_EQ(verify_checkpoint(vo).slid_tensors, 14);
}

std::string round_trip_name(const ::testing::TestParamInfo<RoundTripParam>& info) {
  const auto [s, precision, block, shards] = info.param;
  return std::string(kSources[s].label) + "_to_" + std::string(dtype_name(precision)) + "_2_" +
         std::to_string(block) + "_" + std::to_string(shards) + "shard";
}

INSTANTIATE_TEST_SUITE_P(
    AllSourcesPrecisionsPatterns, RoundTrip,
    ::testing::Combine(::testing::Range(0, 5),
                       ::testing::Values(DType::kI8, DType::kFP8E4M3, DType::kBF16),
                       ::testing::Values(4, 6, 8, 10), ::testing::Values(1, 3)),
    round_trip_name);

// Independent of prepare_linear: recompute one weight with the core functions directly.
TEST_F(ScratchDir, Int8WeightsMatchTheCoreReference) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "src";
  make_model(mm);
  ConvertOptions opt;
  opt.in = mm.out;
  opt.out = dir_ / "out";
  const Sparsity sparsity = Sparsity::from_block(8);
  opt.sparsity = sparsity;
  convert_checkpoint(opt);

  Checkpoint src(opt.in), out(opt.out);
  for (const char* name :
       {"model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.k_proj.weight"}) {
    const TensorInfo& si = src.info(name);
    const int64_t n = si.shape[0], k = si.shape[1];
    std::vector<float> w = decode_to_float(src.bytes(name), si.dtype);
    prune_magnitude<float>(w, n, k, sparsity);
    const QuantizedRows<int8_t> q = quantize_rows_int8(w, n, k);
    const std::vector<int8_t> expected = slide_weights<int8_t>(q.codes, n, k, sparsity);
    const std::vector<int8_t> got = copy_values<int8_t>(out.bytes(name));
    EXPECT_EQ(got, expected) << name;
    EXPECT_EQ(copy_values<float>(out.bytes(std::string(name) + "_scale")), q.scales) << name;
  }
  // Copied tensors are byte-identical.
  auto a = src.bytes("model.embed_tokens.weight"), b = out.bytes("model.embed_tokens.weight");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size()));
}

TEST_F(ScratchDir, SamePrecisionW8A8KeepsCodesAndScales) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("qwen2")).string();
  mm.out = dir_ / "src";
  mm.weight_quant = DType::kI8;
  make_model(mm);
  ConvertOptions opt;
  opt.in = mm.out;
  opt.out = dir_ / "out";
  opt.sparsity = Sparsity::from_block(6);
  convert_checkpoint(opt);
  Checkpoint src(opt.in), out(opt.out);
  const std::string name = "model.layers.0.mlp.up_proj.weight";
  const TensorInfo& si = src.info(name);
  std::vector<int8_t> codes = copy_values<int8_t>(src.bytes(name));
  prune_magnitude<int8_t>(codes, si.shape[0], si.shape[1], opt.sparsity);
  EXPECT_EQ(unslide_weights<int8_t>(copy_values<int8_t>(out.bytes(name)), si.shape[0], si.shape[1],
                                    opt.sparsity),
            codes);
  EXPECT_EQ(copy_values<float>(out.bytes(name + "_scale")),
            copy_values<float>(src.bytes(name + "_scale")));
}

TEST_F(ScratchDir, AssumePrunedAcceptsPrunedAndNamesTheFirstViolation) {
  const fs::path config = test::write_config(dir_, test::tiny_config("llama"));
  MakeModelOptions mm;
  mm.config = config.string();
  mm.out = dir_ / "pruned";
  mm.prune = Sparsity::from_block(8);
  make_model(mm);
  ConvertOptions opt;
  opt.in = mm.out;
  opt.out = dir_ / "out";
  opt.sparsity = Sparsity::from_block(8);
  opt.assume_pruned = true;
  convert_checkpoint(opt);
  VerifyOptions vo;
  vo.dir = opt.out;
  vo.source = opt.in;
  EXPECT_EQ(verify_checkpoint(vo).compared_with_source, 14);
  EXPECT_TRUE(SlideManifest::load(opt.out).assume_pruned);

  // Pruned to 2:8 is not 2:6 (6 non-zeros in some block of 6... actually 4:6 needs 2 zeros per 6).
  opt.out = dir_ / "out26";
  opt.sparsity = Sparsity::from_block(6);
  try {
    convert_checkpoint(opt);
    FAIL() << "expected a PatternError";
  } catch (const PatternError& e) {
    EXPECT_HAS(e.what(), "model.layers.0.self_attn.q_proj.weight");
    EXPECT_HAS(e.what(), "row");
    EXPECT_HAS(e.what(), "block");
  }
  EXPECT_FALSE(fs::exists(opt.out));
  EXPECT_EQ(test::count_entries_with_prefix(dir_, "out26.tmp-"), 0);

  // Not pruned at all.
  mm.out = dir_ / "dense";
  mm.prune.reset();
  make_model(mm);
  opt.in = mm.out;
  opt.out = dir_ / "out_dense";
  opt.sparsity = Sparsity::from_block(8);
  EXPECT_THROW(convert_checkpoint(opt), PatternError);
  EXPECT_FALSE(fs::exists(opt.out));
}

TEST_F(ScratchDir, OutputIsAtomicAndOverwriteNeedsAFlag) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "src";
  make_model(mm);
  ConvertOptions opt;
  opt.in = mm.out;
  opt.out = dir_ / "out";
  // Left by a killed run (no such process): removed; a live process's temporary is kept.
  fs::create_directories(dir_ / "out.tmp-999999999" / "x");
  fs::create_directories(dir_ / ("out.tmp-" + std::to_string(::getppid())));
  convert_checkpoint(opt);
  EXPECT_FALSE(fs::exists(dir_ / "out.tmp-999999999"));
  EXPECT_TRUE(fs::exists(dir_ / ("out.tmp-" + std::to_string(::getppid()))));
  fs::remove(dir_ / ("out.tmp-" + std::to_string(::getppid())));
  try {
    convert_checkpoint(opt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "--overwrite");
  }
  // A failing run with --overwrite leaves the previous output untouched.
  opt.overwrite = true;
  opt.assume_pruned = true;
  EXPECT_THROW(convert_checkpoint(opt), PatternError);
  EXPECT_TRUE(fs::exists(opt.out / "slidesparse.json"));
  EXPECT_EQ(SlideManifest::load(opt.out).precision, DType::kI8);
  // A successful one replaces it.
  opt.assume_pruned = false;
  opt.precision = DType::kBF16;
  convert_checkpoint(opt);
  EXPECT_EQ(SlideManifest::load(opt.out).precision, DType::kBF16);
  EXPECT_EQ(test::count_entries_with_prefix(dir_, "out."), 0);
  // A converted checkpoint is not a valid source.
  opt.in = opt.out;
  opt.out = dir_ / "again";
  try {
    convert_checkpoint(opt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "already a SlideSparse checkpoint");
  }
}

// A write failure at --out is one plain Error naming --out (not the temporary folder), before
// any work; the source and any previous output are untouched, nothing is left behind.
TEST_F(ScratchDir, UnwritableOutIsAnErrorNamingOut) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "src";
  make_model(mm);
  std::ofstream(dir_ / "plain") << "a file where the parent folder of --out should be";
  ConvertOptions opt;
  opt.in = mm.out;
  opt.out = dir_ / "plain" / "out";
  try {
    convert_checkpoint(opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "convert: cannot write --out " + opt.out.string());
    EXPECT_EQ(std::string(e.what()).find(".tmp-"), std::string::npos) << e.what();
  }
  // make-model: the same rule.
  mm.out = dir_ / "plain" / "model";
  try {
    make_model(mm);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "make-model: cannot write --out " + mm.out.string());
  }
  EXPECT_EQ(test::count_entries_with_prefix(dir_, "plain."), 0);
}

TEST_F(ScratchDir, ReadOnlyOutFolderIsAnErrorNamingOut) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: a 0555 folder does not refuse root";
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "src";
  make_model(mm);
  fs::create_directories(dir_ / "ro");
  fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  ConvertOptions opt;
  opt.in = mm.out;
  opt.out = dir_ / "ro" / "out";
  std::string what = "(no error)";
  try {
    convert_checkpoint(opt);
  } catch (const Error& e) {
    what = e.what();
  }
  fs::permissions(dir_ / "ro", fs::perms::owner_all);
  EXPECT_HAS(what, "convert: cannot write --out " + opt.out.string());
  EXPECT_HAS(what, "Permission denied");
  EXPECT_TRUE(fs::is_empty(dir_ / "ro"));
}

// Cancelled between tensors (Ctrl-C in the CLI): InterruptedError, the temporary output removed,
// --out not created (and an existing one kept).
TEST_F(ScratchDir, CancelRemovesTheTemporaryOutput) {
  MakeModelOptions mm;
  mm.config = test::write_config(dir_, test::tiny_config("llama")).string();
  mm.out = dir_ / "src";
  make_model(mm);
  std::atomic<bool> cancel{false};
  ConvertOptions opt;
  opt.in = mm.out;
  opt.out = dir_ / "out";
  opt.cancel = &cancel;
  int lines = 0;
  opt.progress = [&](std::string_view) {
    if (++lines == 2) cancel = true;  // after the first linear weight
  };
  EXPECT_THROW(convert_checkpoint(opt), InterruptedError);
  EXPECT_FALSE(fs::exists(opt.out));
  EXPECT_EQ(test::count_entries_with_prefix(dir_, "out."), 0);
  cancel = false;
  convert_checkpoint(opt);
  cancel = true;
  lines = 0;
  opt.overwrite = true;
  EXPECT_THROW(convert_checkpoint(opt), InterruptedError);
  EXPECT_TRUE(fs::exists(opt.out / "slidesparse.json"));  // the previous output stays
  EXPECT_EQ(test::count_entries_with_prefix(dir_, "out."), 0);
}

// A source made by hand from a config and a list of tensors to drop / reshape / retype.
class BadSource : public ScratchDir {
 protected:
  fs::path make(const nlohmann::json& config, const std::string& drop = "",
                const std::string& reshape = "", DType linear_dtype = DType::kBF16) {
    const fs::path dir = dir_ / "src";
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << config.dump();
    std::vector<TensorSpec> specs;
    for (const HfTensor& t : hf_tensor_layout(ModelConfig::from_json(config, "bad"))) {
      if (t.name == drop) continue;
      TensorSpec s{t.name, DType::kBF16, t.shape};
      if (t.name == reshape) s.shape[0] += 1;
      if (t.role == HfTensorRole::kLinearWeight) s.dtype = linear_dtype;
      specs.push_back(s);
    }
    SafetensorsWriter w(dir / "model.safetensors", specs);
    for (const TensorSpec& s : specs)
      w.write(s.name, std::vector<std::byte>(static_cast<size_t>(s.nbytes()), std::byte{0x3c}));
    w.finish();
    return dir;
  }
  std::string convert_error(const fs::path& in) {
    ConvertOptions opt;
    opt.in = in;
    opt.out = dir_ / "out";
    try {
      convert_checkpoint(opt);
    } catch (const Error& e) {
      EXPECT_FALSE(fs::exists(opt.out));
      EXPECT_EQ(test::count_entries_with_prefix(dir_, "out.tmp-"), 0);
      return e.what();
    }
    return "(no error)";
  }
};

TEST_F(BadSource, MissingTensor) {
  EXPECT_HAS(convert_error(make(test::tiny_config("llama"), "model.layers.1.mlp.down_proj.weight")),
             "missing tensor 'model.layers.1.mlp.down_proj.weight'");
  fs::remove_all(dir_ / "src");
  EXPECT_HAS(
      convert_error(make(test::tiny_config("qwen2"), "model.layers.0.self_attn.k_proj.bias")),
      "missing tensor 'model.layers.0.self_attn.k_proj.bias'");
}

TEST_F(BadSource, ShapeMismatchAgainstConfig) {
  EXPECT_HAS(
      convert_error(make(test::tiny_config("llama"), "", "model.layers.0.mlp.up_proj.weight")),
      "model.layers.0.mlp.up_proj.weight' has shape [101, 64]");
}

TEST_F(BadSource, ConfigWithoutRequiredKeys) {
  nlohmann::json config = test::tiny_config("llama");
  const fs::path dir = make(config);
  config.erase("intermediate_size");
  std::ofstream(dir / "config.json") << config.dump();
  EXPECT_HAS(convert_error(dir), "missing required key 'intermediate_size'");
  fs::remove(dir / "config.json");
  EXPECT_HAS(convert_error(dir), "config.json");
}

TEST_F(BadSource, OtherFamilyRefused) {
  nlohmann::json config = test::tiny_config("llama");
  const fs::path dir = make(config);
  config["model_type"] = "gpt2";
  config["architectures"] = {"GPT2LMHeadModel"};
  std::ofstream(dir / "config.json") << config.dump();
  EXPECT_HAS(convert_error(dir), "unsupported model family");
}

TEST_F(BadSource, QuantisedWeightWithoutScale) {
  EXPECT_HAS(convert_error(make(test::tiny_config("llama"), "", "", DType::kI8)),
             "_scale' is missing");
}

TEST_F(BadSource, TruncatedShard) {
  const fs::path dir = make(test::tiny_config("llama"));
  fs::resize_file(dir / "model.safetensors", fs::file_size(dir / "model.safetensors") - 100);
  EXPECT_HAS(convert_error(dir), "model.safetensors");
  fs::resize_file(dir / "model.safetensors", 4);
  EXPECT_HAS(convert_error(dir), "truncated");
}

TEST_F(BadSource, UnknownDtypeInHeader) {
  const fs::path dir = make(test::tiny_config("llama"));
  // Rename the dtype of the first tensor in place: "BF16" -> "BF17" keeps the header length.
  std::fstream io(dir / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  std::string head(4096, '\0');
  io.read(head.data(), static_cast<std::streamsize>(head.size()));
  const size_t at = head.find("\"BF16\"");
  ASSERT_NE(at, std::string::npos);
  io.clear();
  io.seekp(static_cast<std::streamoff>(at + 4));
  io.write("7", 1);
  io.close();
  EXPECT_HAS(convert_error(dir), "BF17");
}

}  // namespace
}  // namespace slidesparse
