// The process-wide active tuning table: explicit tables, --no-tuning, a folder holding a broken
// table (defaults, never a crash), and the line `slidesparse info` prints. Runs with or without
// a GPU: the table's key is the current hardware's when a GPU is present.
#include "slidesparse/tuning/tuning_lookup.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "slidesparse/tuning/tuning_db.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

HardwareKey this_key() {
  if (auto key = HardwareKey::current()) return *key;
  HardwareKey key;
  key.gpu_name = "NVIDIA H100 80GB HBM3";
  key.cc = 90;
  key.cuda_runtime = 13000;
  key.cublaslt = 130100;
  key.cusparselt = 800;
  return key;
}

class ActiveTuningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("ss_lookup_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    reset_active_tuning();
    ::unsetenv("SLIDESPARSE_NO_TUNING");
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::shared_ptr<TuningTable> sample_table() const {
    auto table = std::make_shared<TuningTable>(this_key());
    for (int64_t m : {512, 2048}) {
      GemmTuningEntry e;
      e.key = {GemmBackend::kCusparseLt, DType::kI8, DType::kBF16, 3584, 5376, m};
      e.algorithm.is_default = false;
      e.algorithm.alg_config_id = static_cast<int>(m / 512);
      e.algorithm.split_k = 2;
      e.time_us = 50;
      e.sparse_beats_dense = m == 2048;
      table->put(e);
    }
    KernelTuningEntry k;
    k.key = {"dequant", DType::kBF16, 0, 3584, 4096};
    k.config = {128, 4};
    k.time_us = 3;
    table->put(k);
    return table;
  }
  fs::path dir_;
};

TEST_F(ActiveTuningTest, ExplicitTableAnswersLookups) {
  set_active_tuning_table(sample_table(), "unit test table");
  GemmProblemKey key{GemmBackend::kCusparseLt, DType::kI8, DType::kBF16, 3584, 5376, 100};
  auto algo = lookup_tuned_gemm(key);
  ASSERT_TRUE(algo.has_value());
  EXPECT_EQ(algo->alg_config_id, 1);  // M 100 -> tuned M 512
  EXPECT_EQ(lookup_sparse_beats_dense(key), std::optional<bool>(false));
  key.m = 600;
  EXPECT_EQ(lookup_tuned_gemm(key)->alg_config_id, 4);  // -> 2048
  key.m = 65536;
  EXPECT_EQ(lookup_tuned_gemm(key)->alg_config_id, 4);  // beyond: the largest
  EXPECT_EQ(lookup_sparse_beats_dense(key), std::optional<bool>(true));
  key.n = 3585;
  EXPECT_FALSE(lookup_tuned_gemm(key).has_value());  // untuned shape: library default

  auto launch = lookup_tuned_kernel({"dequant", DType::kBF16, 0, 3584, 1});
  ASSERT_TRUE(launch.has_value());
  EXPECT_EQ(*launch, (KernelLaunchConfig{128, 4}));
  EXPECT_FALSE(lookup_tuned_kernel({"quant", DType::kBF16, 0, 3584, 1}).has_value());

  const std::string line = describe_active_tuning();
  EXPECT_NE(line.find("unit test table"), std::string::npos) << line;
  EXPECT_NE(line.find("2 GEMM, 1 kernel"), std::string::npos) << line;
  EXPECT_NE(active_tuning_table(), nullptr);
}

TEST_F(ActiveTuningTest, DisabledMeansDefaults) {
  set_active_tuning_table(sample_table(), "unit test table");
  disable_tuning();
  EXPECT_FALSE(
      lookup_tuned_gemm({GemmBackend::kCusparseLt, DType::kI8, DType::kBF16, 3584, 5376, 512}));
  EXPECT_FALSE(lookup_tuned_kernel({"dequant", DType::kBF16, 0, 3584, 1}));
  EXPECT_NE(describe_active_tuning().find("off"), std::string::npos) << describe_active_tuning();

  reset_active_tuning();
  ::setenv("SLIDESPARSE_NO_TUNING", "1", 1);
  EXPECT_EQ(active_tuning_table(), nullptr);
  EXPECT_NE(describe_active_tuning().find("SLIDESPARSE_NO_TUNING"), std::string::npos)
      << describe_active_tuning();
}

TEST_F(ActiveTuningTest, BrokenTableInFolderGivesDefaultsNotACrash) {
  const fs::path file = tuning_table_dir(dir_, this_key()) / kTuningFileCusparseLt;
  fs::create_directories(file.parent_path());
  std::ofstream(file) << "{\"format\": \"slidesparse-tuning\", \"format_version\": 1, \"hard";
  set_tuning_dir(dir_);
  EXPECT_FALSE(
      lookup_tuned_gemm({GemmBackend::kCusparseLt, DType::kI8, DType::kBF16, 3584, 5376, 512}));
  const std::string line = describe_active_tuning();
  if (HardwareKey::current()) {
    EXPECT_NE(line.find("refused"), std::string::npos) << line;
    EXPECT_NE(line.find("not valid JSON"), std::string::npos) << line;
  } else {
    EXPECT_NE(line.find("no CUDA GPU"), std::string::npos) << line;
  }
}

TEST_F(ActiveTuningTest, GoodFolderIsUsedOnThisGpu) {
  save_tuning_table(*sample_table(), dir_);
  set_tuning_dir(dir_);
  const auto algo =
      lookup_tuned_gemm({GemmBackend::kCusparseLt, DType::kI8, DType::kBF16, 3584, 5376, 512});
  if (!HardwareKey::current()) {
    EXPECT_FALSE(algo.has_value());  // no GPU: no hardware key to match, so no table
    return;
  }
  ASSERT_TRUE(algo.has_value()) << describe_active_tuning();
  EXPECT_EQ(algo->alg_config_id, 1);
  EXPECT_NE(describe_active_tuning().find(this_key().dir_name()), std::string::npos);
}

TEST_F(ActiveTuningTest, TableForOtherHardwareRefusedWhenGpuPresent) {
  if (!HardwareKey::current())
    GTEST_SKIP() << "no CUDA GPU present (the current hardware key needs one)";
  HardwareKey other = this_key();
  other.cusparselt += 1;
  auto table = std::make_shared<TuningTable>(other);
  EXPECT_THROW(set_active_tuning_table(table, "foreign"), HardwareMismatchError);
}

TEST(TuningLookup, DefaultDirIsEnvOrSourceTree) {
  ::setenv("SLIDESPARSE_TUNING_DIR", "/some/where", 1);
  EXPECT_EQ(default_tuning_dir(), fs::path("/some/where"));
  ::unsetenv("SLIDESPARSE_TUNING_DIR");
  EXPECT_EQ(default_tuning_dir().filename(), "tuning");
}

}  // namespace
}  // namespace slidesparse
