// verify passes on good output and fails, naming the tensor, on every kind of tampering.
#include "convert/verify.h"

#include <gtest/gtest.h>

#include "convert/convert_test_util.h"
#include "convert/converter.h"
#include "convert/make_model.h"
#include "io/slide_manifest.h"
#include "io/tensor_data.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

class Verify : public test::ScratchDir {
 protected:
  void convert(DType precision) {
    MakeModelOptions mm;
    mm.config = test::write_config(dir_, test::tiny_config("qwen2")).string();
    mm.out = dir_ / "src";
    mm.shards = 2;
    make_model(mm);
    ConvertOptions opt;
    opt.in = mm.out;
    opt.out = dir_ / "out";
    opt.sparsity = Sparsity::from_block(8);
    opt.precision = precision;
    convert_checkpoint(opt);
  }
  std::string verify_error(bool with_source) {
    VerifyOptions vo;
    vo.dir = dir_ / "out";
    if (with_source) vo.source = dir_ / "src";
    try {
      verify_checkpoint(vo);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  // Index of the first non-zero of W' (int8 / fp8: one byte per element).
  int64_t first_nonzero_byte(const std::string& name, int64_t from = 0) {
    Checkpoint c(dir_ / "out");
    auto bytes = c.bytes(name);
    for (size_t i = static_cast<size_t>(from); i < bytes.size(); ++i)
      if (bytes[i] != std::byte{0}) return static_cast<int64_t>(i);
    return -1;
  }
};

const char* kName = "model.layers.1.self_attn.o_proj.weight";

TEST_F(Verify, PassesOnGoodOutput) {
  convert(DType::kI8);
  EXPECT_EQ(verify_error(true), "(no error)");
  EXPECT_EQ(verify_error(false), "(no error)");
}

TEST_F(Verify, BrokenTwoFourIsNamed) {
  convert(DType::kI8);
  // Fill a whole group of 4 with non-zeros.
  const int8_t ones[4] = {1, 1, 1, 1};
  test::poke_tensor(dir_ / "out", kName, 0, ones, 4);
  const std::string msg = verify_error(false);
  EXPECT_NE(msg.find(kName), std::string::npos) << msg;
  EXPECT_NE(msg.find("2:4"), std::string::npos) << msg;
}

TEST_F(Verify, NonZeroInPaddingSlotIsNamed) {
  convert(DType::kI8);
  // down_proj has K = 100 -> K_pad 104, 13 blocks * 12 slots = 156 -> K' 160: slots 156..159 pad.
  const std::string name = "model.layers.0.mlp.down_proj.weight";
  const int8_t one = 1;
  test::poke_tensor(dir_ / "out", name, 157, &one, 1);
  const std::string msg = verify_error(false);
  EXPECT_NE(msg.find(name), std::string::npos) << msg;
}

TEST_F(Verify, ChangedValueIsCaughtAgainstTheSource) {
  convert(DType::kI8);
  const int64_t at = first_nonzero_byte(kName);
  ASSERT_GE(at, 0);
  Checkpoint c(dir_ / "out");
  int8_t v = static_cast<int8_t>(c.bytes(kName)[static_cast<size_t>(at)]);
  v = static_cast<int8_t>(v == 5 ? 6 : 5);
  test::poke_tensor(dir_ / "out", kName, at, &v, 1);
  EXPECT_EQ(verify_error(false), "(no error)");  // still a valid 2:4 / Z:L weight
  const std::string msg = verify_error(true);
  EXPECT_NE(msg.find(kName), std::string::npos) << msg;
  EXPECT_NE(msg.find("differs"), std::string::npos) << msg;
}

TEST_F(Verify, ChangedScaleAndCopiedTensorAreCaught) {
  convert(DType::kFP8E4M3);
  const float s = 123.0f;
  test::poke_tensor(dir_ / "out", std::string(kName) + "_scale", 4, &s, 4);
  std::string msg = verify_error(true);
  EXPECT_NE(msg.find("scale[1]"), std::string::npos) << msg;
  const float bad = -1.0f;
  test::poke_tensor(dir_ / "out", std::string(kName) + "_scale", 4, &bad, 4);
  msg = verify_error(false);
  EXPECT_NE(msg.find("positive"), std::string::npos) << msg;

  fs::remove_all(dir_ / "out");
  fs::remove_all(dir_ / "src");
  convert(DType::kBF16);
  const uint16_t x = 0x4000;
  test::poke_tensor(dir_ / "out", "model.norm.weight", 2, &x, 2);
  msg = verify_error(true);
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bytes differ"), std::string::npos) << msg;
}

TEST_F(Verify, WrongSourceAndMissingManifest) {
  convert(DType::kI8);
  // A different random source of the same shapes.
  MakeModelOptions mm;
  mm.config = (dir_ / "tiny.json").string();
  mm.out = dir_ / "other";
  mm.seed = 99;
  make_model(mm);
  VerifyOptions vo;
  vo.dir = dir_ / "out";
  vo.source = dir_ / "other";
  EXPECT_THROW(verify_checkpoint(vo), Error);
  fs::remove(dir_ / "out" / "slidesparse.json");
  EXPECT_NE(verify_error(false).find("not a SlideSparse checkpoint"), std::string::npos);
}

}  // namespace
}  // namespace slidesparse
