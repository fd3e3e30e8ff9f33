// safetensors: writer -> reader round trips for every dtype, sharded checkpoints, and a clear
// FormatError for each malformed header the issue lists.
#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "io/tensor_data.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ss_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// A file image: 8-byte length, header text, `data_bytes` bytes of data.
std::vector<std::byte> image(const std::string& header, size_t data_bytes) {
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0x5A});
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::string parse_error(const std::vector<std::byte>& bytes) {
  try {
    parse_safetensors_header(bytes, bytes.size(), "test.safetensors");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string parse_error(const std::string& header, size_t data_bytes) {
  return parse_error(image(header, data_bytes));
}

#define EXPECT_HAS(haystack, needle)                                    \
  do {                                                                  \
    std::string h_ = (haystack);                                        \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_; \
  } while (0)

TEST(SafetensorsHeader, ParsesAValidHeader) {
  auto bytes = image(
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[8,20]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"I8","shape":[0],"data_offsets":[20,20]}})",
      20);
  SafetensorsHeader h = parse_safetensors_header(bytes, bytes.size(), "t");
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[1].name, "b");
  EXPECT_EQ(h.tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(h.tensors[1].numel(), 6);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  ASSERT_NE(h.find("e"), nullptr);
  EXPECT_EQ(h.find("e")->nbytes(), 0);
}

TEST(SafetensorsHeader, EveryBadInputGetsAClearMessage) {
  const std::string ok_a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  EXPECT_HAS(parse_error(std::vector<std::byte>(5)), "truncated");
  {
    auto bytes = image("{}", 0);
    uint64_t huge = 1000;
    std::memcpy(bytes.data(), &huge, 8);
    EXPECT_HAS(parse_error(bytes), "past the end");
  }
  {
    auto bytes = image("{}", 0);
    uint64_t huge = ~0ull;
    std::memcpy(bytes.data(), &huge, 8);
    EXPECT_HAS(parse_error(bytes), "past the end");
  }
  EXPECT_HAS(parse_error("{\"a\":", 0), "not valid JSON");
  EXPECT_HAS(parse_error("[1,2]  ", 0), "JSON object");
  EXPECT_HAS(parse_error(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8), "F64");
  EXPECT_HAS(parse_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
             "needs 12 bytes");
  EXPECT_HAS(
      parse_error("{" + ok_a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
      "overlap");
  EXPECT_HAS(
      parse_error("{" + ok_a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 12),
      "out of range");
  EXPECT_HAS(
      parse_error("{" + ok_a + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", 16),
      "belong to no tensor");
  EXPECT_HAS(parse_error("{" + ok_a + "}", 12), "data region has 12");
  EXPECT_HAS(parse_error("{" + ok_a + "," + ok_a + "}", 8), "twice");
  EXPECT_HAS(parse_error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
             "non-negative");
  EXPECT_HAS(parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8),
             "< begin");
  EXPECT_HAS(parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
             "data_offsets");
  EXPECT_HAS(parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8),
             "unknown key");
  EXPECT_HAS(parse_error(R"({"__metadata__":{"k":3}})", 0), "__metadata__");
  EXPECT_HAS(
      parse_error(
          R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})",
          8),
      "overflows");
  EXPECT_HAS(parse_error(R"({"a":{"dtype":"F32","shape":[[[[[1]]]]],"data_offsets":[0,8]}})", 8),
             "deeper");
}

TEST_F(SafetensorsTest, RoundTripEveryDtypeWithMetadata) {
  const std::vector<DType> dtypes = {DType::kF32, DType::kF16,     DType::kBF16,
                                     DType::kI8,  DType::kFP8E4M3, DType::kI32};
  std::vector<TensorSpec> specs;
  std::vector<std::vector<std::byte>> payloads;
  for (size_t i = 0; i < dtypes.size(); ++i) {
    TensorSpec s{"t" + std::to_string(i), dtypes[i], {3, static_cast<int64_t>(i) + 1}};
    std::vector<std::byte> data(static_cast<size_t>(s.nbytes()));
    for (size_t b = 0; b < data.size(); ++b) data[b] = std::byte(static_cast<uint8_t>(b * 7 + i));
    specs.push_back(s);
    payloads.push_back(data);
  }
  specs.push_back({"scalar", DType::kF32, {}});
  payloads.push_back(std::vector<std::byte>(4, std::byte{1}));
  const fs::path path = dir_ / "model.safetensors";
  {
    SafetensorsWriter w(path, specs, {{"format", "pt"}});
    for (size_t i = specs.size(); i-- > 0;) w.write(specs[i].name, payloads[i]);  // any order
    EXPECT_FALSE(fs::exists(path));
    w.finish();
  }
  SafetensorsFile f(path);
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  EXPECT_EQ(f.header().data_offset() % 8, 0u);
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorInfo& t = f.info(specs[i].name);
    EXPECT_EQ(t.dtype, specs[i].dtype);
    EXPECT_EQ(t.shape, specs[i].shape);
    auto bytes = f.bytes(t);
    ASSERT_EQ(bytes.size(), payloads[i].size());
    EXPECT_EQ(0, std::memcmp(bytes.data(), payloads[i].data(), bytes.size())) << specs[i].name;
    f.release(t);
    EXPECT_EQ(0, std::memcmp(f.bytes(t).data(), payloads[i].data(), bytes.size()));
  }
  EXPECT_THROW(f.info("nope"), Error);
  // Only the final file remains: no temporary left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(SafetensorsTest, WriterLeavesNothingOnFailure) {
  const fs::path path = dir_ / "x.safetensors";
  std::vector<float> v = {1, 2, 3, 4};
  {
    SafetensorsWriter w(path, {{"a", DType::kF32, {4}}, {"b", DType::kF32, {4}}});
    w.write_values<float>("a", v);
    EXPECT_THROW(w.write_values<float>("a", v), Error);                      // twice
    EXPECT_THROW(w.write_values<float>("c", v), Error);                      // undeclared
    EXPECT_THROW(w.write_values<float>("b", std::span(v).first(3)), Error);  // size
    EXPECT_THROW(w.finish(), Error);                                         // b missing
  }
  EXPECT_TRUE(fs::is_empty(dir_));
  EXPECT_THROW(SafetensorsWriter(path, {{"a", DType::kF32, {4}}, {"a", DType::kF32, {4}}}), Error);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(SafetensorsTest, FileErrorsNameTheFile) {
  std::ofstream(dir_ / "short.safetensors") << "abc";
  try {
    SafetensorsFile f(dir_ / "short.safetensors");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_HAS(e.what(), "short.safetensors");
    EXPECT_HAS(e.what(), "truncated");
  }
  // A valid file cut short: the tensors no longer fit.
  const fs::path path = dir_ / "cut.safetensors";
  {
    SafetensorsWriter w(path, {{"a", DType::kF32, {64}}});
    std::vector<float> v(64, 1.0f);
    w.write_values<float>("a", v);
    w.finish();
  }
  fs::resize_file(path, fs::file_size(path) - 10);
  try {
    SafetensorsFile f(path);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_HAS(e.what(), "out of range");
  }
  EXPECT_THROW(SafetensorsFile(dir_ / "absent.safetensors"), Error);
}

void write_shard(const fs::path& path, const std::vector<std::string>& names, float base) {
  std::vector<TensorSpec> specs;
  for (const auto& n : names) specs.push_back({n, DType::kF32, {2, 2}});
  SafetensorsWriter w(path, specs);
  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<float> v(4, base + static_cast<float>(i));
    w.write_values<float>(names[i], v);
  }
  w.finish();
}

void write_index(const fs::path& dir, const nlohmann::json& weight_map) {
  nlohmann::json j = {{"metadata", {{"total_size", 64}}}, {"weight_map", weight_map}};
  std::ofstream(dir / "model.safetensors.index.json") << j.dump();
}

TEST_F(SafetensorsTest, ShardedCheckpoint) {
  write_shard(dir_ / "model-00001-of-00002.safetensors", {"x", "y"}, 1);
  write_shard(dir_ / "model-00002-of-00002.safetensors", {"z"}, 10);
  nlohmann::json map = {{"x", "model-00001-of-00002.safetensors"},
                        {"y", "model-00001-of-00002.safetensors"},
                        {"z", "model-00002-of-00002.safetensors"}};
  write_index(dir_, map);
  Checkpoint c(dir_);
  EXPECT_TRUE(c.sharded());
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.tensor_names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(copy_values<float>(c.bytes("z"))[0], 10.0f);
  EXPECT_EQ(copy_values<float>(c.bytes("y"))[3], 2.0f);
  EXPECT_EQ(c.index_metadata().at("total_size"), "64");
  EXPECT_THROW(c.info("w"), Error);

  // Listed but absent from its shard.
  map["w"] = "model-00002-of-00002.safetensors";
  write_index(dir_, map);
  try {
    Checkpoint bad(dir_);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_HAS(e.what(), "missing tensor 'w'");
  }
  // In a shard but not listed.
  map.erase("w");
  map.erase("y");
  write_index(dir_, map);
  EXPECT_THROW(Checkpoint{dir_}, FormatError);
  map["y"] = "model-00001-of-00002.safetensors";
  // A shard that does not exist.
  map["z"] = "model-00009-of-00002.safetensors";
  write_index(dir_, map);
  EXPECT_THROW(Checkpoint{dir_}, FormatError);
  // Path traversal in the index.
  map["z"] = "../evil.safetensors";
  write_index(dir_, map);
  EXPECT_THROW(Checkpoint{dir_}, FormatError);
}

TEST_F(SafetensorsTest, SingleFileCheckpointAndEmptyDir) {
  EXPECT_THROW(Checkpoint{dir_}, Error);
  write_shard(dir_ / "model.safetensors", {"a"}, 3);
  Checkpoint c(dir_);
  EXPECT_FALSE(c.sharded());
  EXPECT_TRUE(c.contains("a"));
  EXPECT_EQ(copy_values<float>(c.bytes("a"))[0], 3.0f);
}

TEST(TensorData, HalfRoundTripsEveryPattern) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float f = half_to_float(static_cast<uint16_t>(bits));
    const uint16_t back = half_from_float(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(back)));
    } else {
      ASSERT_EQ(back, bits) << "half bits " << bits;
    }
  }
  EXPECT_EQ(half_from_float(65504.0f), 0x7BFF);
  EXPECT_EQ(half_from_float(65520.0f), 0x7C00);                    // tie rounds to even -> inf
  EXPECT_EQ(half_from_float(1.0f + 0x1p-11f), 0x3C00);             // tie to even (down)
  EXPECT_EQ(half_from_float(1.0f + 0x1p-10f + 0x1p-11f), 0x3C02);  // tie to even (up)
  EXPECT_EQ(half_from_float(0x1p-25f), 0x0000);  // half the smallest subnormal: even
  EXPECT_EQ(half_from_float(0x1.8p-25f), 0x0001);
}

TEST(TensorData, DecodeEncode) {
  std::vector<float> v = {1.5f, -2.25f, 0.0f, 1e-3f};
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) {
    auto bytes = encode_from_float(v, d);
    auto back = decode_to_float(bytes, d);
    ASSERT_EQ(back.size(), v.size());
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(back[i], v[i]) << dtype_name(d);
  }
  std::vector<std::byte> i8 = {std::byte{0xFF}, std::byte{0x7F}};
  EXPECT_EQ(decode_to_float(i8, DType::kI8), (std::vector<float>{-1.0f, 127.0f}));
  EXPECT_THROW(encode_from_float(v, DType::kI8), Error);
  EXPECT_THROW(decode_to_float(std::span(i8).first(1), DType::kF16), Error);
}

}  // namespace
}  // namespace slidesparse
