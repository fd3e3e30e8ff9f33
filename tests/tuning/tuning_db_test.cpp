// The tuning database on the CPU: JSON round trip, the M lookup rule (below, between, beyond the
// tuned Ms), refusal of tables from other hardware or library versions, malformed files.
#include "slidesparse/tuning/tuning_db.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/temp_dir.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

HardwareKey h100_key() {
  HardwareKey key;
  key.gpu_name = "NVIDIA H100 80GB HBM3";
  key.cc = 90;
  key.cuda_runtime = 13000;
  key.cublaslt = 130100;
  key.cusparselt = 800;
  return key;
}

using test::TempDir;

GemmTuningEntry dense_entry(int64_t n, int64_t k, int64_t m, int heuristic_index) {
  GemmTuningEntry e;
  e.key = {GemmBackend::kCublasLt, DType::kI8, DType::kI32, n, k, m};
  e.algorithm.is_default = heuristic_index == 0;
  e.algorithm.cublaslt_heuristic_index = heuristic_index;
  for (size_t i = 0; i < e.algorithm.cublaslt_algo.size(); ++i) {
    e.algorithm.cublaslt_algo[i] = 0x0123456789abcdefULL * (i + 1) + static_cast<uint64_t>(m);
  }
  e.time_us = 100.5 + static_cast<double>(m) / 1000.0;
  e.default_time_us = 120.25;
  e.candidates_tried = 16;
  return e;
}

GemmTuningEntry sparse_entry(int64_t n, int64_t k_slide, int64_t m, int cfg, int split_k) {
  GemmTuningEntry e;
  e.key = {GemmBackend::kCusparseLt, DType::kFP8E4M3, DType::kBF16, n, k_slide, m};
  e.algorithm.is_default = false;
  e.algorithm.alg_config_id = cfg;
  e.algorithm.split_k = split_k;
  e.algorithm.split_k_mode = split_k > 1 ? 2 : 0;
  e.time_us = 77.0;
  e.default_time_us = 91.0;
  e.candidates_tried = 40;
  e.dense_time_us = 88.0;
  e.sparse_beats_dense = true;
  e.sparsity = "2:8";
  return e;
}

KernelTuningEntry kernel_entry(int64_t cols, int64_t m, int threads) {
  KernelTuningEntry e;
  e.key.kernel = "quant_slide";
  e.key.dtype = DType::kI8;
  e.key.block = 8;
  e.key.cols = cols;
  e.key.m = m;
  e.config = {threads, 2};
  e.time_us = 12.5;
  e.default_time_us = 14.0;
  return e;
}

void write_text(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

TEST(HardwareKey, DirNameSaysGpuAndVersions) {
  EXPECT_EQ(h100_key().dir_name(),
            "NVIDIA_H100_80GB_HBM3_cc90_cuda13.0_cublaslt130100_cusparselt800");
  HardwareKey odd = h100_key();
  odd.gpu_name = "  NVIDIA  H100 (PCIe)/x ";
  EXPECT_EQ(odd.dir_name().rfind("NVIDIA_H100_PCIe_x_cc90", 0), 0u) << odd.dir_name();
}

TEST(TuningDb, RoundTripKeepsEveryField) {
  TempDir dir;
  TuningTable table(h100_key());
  table.put(dense_entry(4608, 3584, 2048, 3));
  table.put(dense_entry(4608, 3584, 8192, 0));
  table.put(sparse_entry(4608, 5376, 2048, 5, 4));
  GemmTuningEntry segment = sparse_entry(3584, 28416, 16384, 2, -1);
  segment.sparse_beats_dense = false;
  segment.sparsity = "2:6";
  table.put(segment);
  table.put(kernel_entry(3584, 2048, 256));
  table.put(kernel_entry(3584, 65536, 512));

  const auto written = save_tuning_table(table, dir.path());
  ASSERT_EQ(written.size(), 3u);
  for (const auto& file : written) {
    EXPECT_TRUE(fs::is_regular_file(file)) << file;
    EXPECT_EQ(file.parent_path(), tuning_table_dir(dir.path(), h100_key()));
  }
  // No temporary file is left behind.
  for (const auto& entry : fs::directory_iterator(tuning_table_dir(dir.path(), h100_key()))) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }

  const TuningTable loaded = load_tuning_table(dir.path(), h100_key());
  EXPECT_EQ(loaded.hardware(), h100_key());
  ASSERT_EQ(loaded.gemm_count(), 4u);
  ASSERT_EQ(loaded.kernel_count(), 2u);
  for (const auto& want : table.gemm_entries()) {
    const GemmTuningEntry* got = loaded.find_gemm_exact(want.key);
    ASSERT_NE(got, nullptr) << "n " << want.key.n << " m " << want.key.m;
    EXPECT_EQ(got->algorithm, want.algorithm) << got->algorithm.describe();
    EXPECT_DOUBLE_EQ(got->time_us, want.time_us);
    EXPECT_DOUBLE_EQ(got->default_time_us, want.default_time_us);
    EXPECT_EQ(got->candidates_tried, want.candidates_tried);
    EXPECT_EQ(got->dense_time_us, want.dense_time_us);
    EXPECT_EQ(got->sparse_beats_dense, want.sparse_beats_dense);
    EXPECT_EQ(got->sparsity, want.sparsity);
    EXPECT_EQ(got->key.out_dtype, want.key.out_dtype);
  }
  for (const auto& want : table.kernel_entries()) {
    const KernelTuningEntry* got = loaded.find_kernel_exact(want.key);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->config, want.config);
    EXPECT_DOUBLE_EQ(got->time_us, want.time_us);
  }
  // One file per section: the dense file holds no sparse entry and the reverse.
  const TuningTable dense_only =
      read_tuning_file(tuning_table_dir(dir.path(), h100_key()) / kTuningFileCublasLt);
  EXPECT_EQ(dense_only.gemm_count(), 2u);
  EXPECT_EQ(dense_only.kernel_count(), 0u);
}

TEST(TuningDb, GemmAlgorithmJsonRoundTrip) {
  GemmAlgorithm dense;
  dense.is_default = false;
  dense.cublaslt_heuristic_index = 7;
  for (size_t i = 0; i < dense.cublaslt_algo.size(); ++i) {
    dense.cublaslt_algo[i] = ~0ULL - i * 0x1111;  // high bits set: must survive JSON exactly
  }
  GemmAlgorithm sparse;
  sparse.is_default = false;
  sparse.alg_config_id = 11;
  sparse.split_k = -1;
  sparse.split_k_mode = 1;
  for (const GemmAlgorithm& a : {GemmAlgorithm{}, dense, sparse}) {
    nlohmann::json j = a;
    const auto back = nlohmann::json::parse(j.dump()).get<GemmAlgorithm>();
    EXPECT_EQ(back, a) << j.dump();
  }
}

TEST(TuningDb, LookupTakesSmallestTunedMAtLeastM) {
  TuningTable table(h100_key());
  for (int64_t m : {256, 1024, 4096}) table.put(dense_entry(4608, 3584, m, static_cast<int>(m)));
  auto m_found = [&](int64_t m) {
    GemmProblemKey key{GemmBackend::kCublasLt, DType::kI8, DType::kI32, 4608, 3584, m};
    const GemmTuningEntry* e = table.find_gemm(key);
    return e == nullptr ? int64_t{-1} : e->key.m;
  };
  EXPECT_EQ(m_found(1), 256);     // below the smallest: the smallest
  EXPECT_EQ(m_found(256), 256);   // exact
  EXPECT_EQ(m_found(257), 1024);  // between: the next larger
  EXPECT_EQ(m_found(1024), 1024);
  EXPECT_EQ(m_found(4000), 4096);
  EXPECT_EQ(m_found(4096), 4096);
  EXPECT_EQ(m_found(65536), 4096);  // beyond the largest: the largest
  // Other shapes, dtypes or backends are not confused with this one.
  EXPECT_EQ(table.find_gemm({GemmBackend::kCublasLt, DType::kI8, DType::kI32, 4608, 3585, 256}),
            nullptr);
  EXPECT_EQ(table.find_gemm({GemmBackend::kCublasLt, DType::kI8, DType::kBF16, 4608, 3584, 256}),
            nullptr);
  EXPECT_EQ(table.find_gemm({GemmBackend::kCusparseLt, DType::kI8, DType::kI32, 4608, 3584, 256}),
            nullptr);
  EXPECT_EQ(
      table.find_gemm_exact({GemmBackend::kCublasLt, DType::kI8, DType::kI32, 4608, 3584, 300}),
      nullptr);

  for (int64_t m : {64, 8192}) table.put(kernel_entry(3584, m, static_cast<int>(m / 64)));
  KernelProblemKey kkey{"quant_slide", DType::kI8, 8, 3584, 1};
  ASSERT_NE(table.find_kernel(kkey), nullptr);
  EXPECT_EQ(table.find_kernel(kkey)->key.m, 64);
  kkey.m = 65;
  EXPECT_EQ(table.find_kernel(kkey)->key.m, 8192);
  kkey.m = 1 << 20;
  EXPECT_EQ(table.find_kernel(kkey)->key.m, 8192);
  kkey.block = 6;
  EXPECT_EQ(table.find_kernel(kkey), nullptr);
}

TEST(TuningDb, PutReplacesTheSameProblemAndM) {
  TuningTable table(h100_key());
  table.put(dense_entry(64, 64, 128, 1));
  table.put(dense_entry(64, 64, 128, 2));
  EXPECT_EQ(table.gemm_count(), 1u);
  EXPECT_EQ(table.find_gemm({GemmBackend::kCublasLt, DType::kI8, DType::kI32, 64, 64, 128})
                ->algorithm.cublaslt_heuristic_index,
            2);
}

TEST(TuningDb, MissingFolderGivesEmptyTable) {
  TempDir dir;
  const TuningTable table = load_tuning_table(dir.path() / "nothing_here", h100_key());
  EXPECT_TRUE(table.empty());
  EXPECT_TRUE(list_tuning_keys(dir.path() / "nothing_here").empty());
}

// Each field of the key, changed alone, must make the table refused with a message naming it.
TEST(TuningDb, RefusesTableFromOtherHardwareOrVersions) {
  TempDir dir;
  TuningTable table(h100_key());
  table.put(sparse_entry(4608, 5376, 2048, 5, 4));
  const auto written = save_tuning_table(table, dir.path());
  ASSERT_EQ(written.size(), 1u);

  struct Case {
    const char* what;
    void (*change)(HardwareKey&);
  };
  const Case cases[] = {
      {"cuSPARSELt", [](HardwareKey& k) { k.cusparselt = 700; }},
      {"cuBLASLt", [](HardwareKey& k) { k.cublaslt = 120900; }},
      {"CUDA runtime", [](HardwareKey& k) { k.cuda_runtime = 12080; }},
      {"compute capability", [](HardwareKey& k) { k.cc = 89; }},
      {"GPU", [](HardwareKey& k) { k.gpu_name = "NVIDIA L40S"; }},
  };
  for (const Case& c : cases) {
    HardwareKey other = h100_key();
    c.change(other);
    // Its own folder has no table ...
    EXPECT_TRUE(load_tuning_table(dir.path(), other).empty()) << c.what;
    // ... and a file copied into it by hand is refused, never used.
    const fs::path target = tuning_table_dir(dir.path(), other) / kTuningFileCusparseLt;
    fs::create_directories(target.parent_path());
    fs::copy_file(written[0], target, fs::copy_options::overwrite_existing);
    try {
      load_tuning_table(dir.path(), other);
      ADD_FAILURE() << "table for another " << c.what << " was accepted";
    } catch (const HardwareMismatchError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.what), std::string::npos) << msg;
      EXPECT_NE(msg.find("refusing"), std::string::npos) << msg;
      EXPECT_NE(msg.find(target.string()), std::string::npos) << msg;
    }
    // The run-time path turns the refusal into "no table" plus a description.
    std::string description;
    EXPECT_EQ(load_tuning_table_or_none(dir.path(), other, &description), nullptr);
    EXPECT_NE(description.find("refused"), std::string::npos) << description;
    fs::remove_all(target.parent_path());
  }
  EXPECT_EQ(list_tuning_keys(dir.path()), std::vector<std::string>{h100_key().dir_name()});
}

TEST(TuningDb, MalformedFilesGiveClearErrorsAndDefaults) {
  const HardwareKey key = h100_key();
  nlohmann::json good_entry = dense_entry(4608, 3584, 2048, 3);
  auto doc_with = [&](const nlohmann::json& entry) {
    nlohmann::json doc{{"format", "slidesparse-tuning"},
                       {"format_version", kTuningFormatVersion},
                       {"hardware", key},
                       {"gemm", nlohmann::json::array({good_entry, entry})}};
    return doc.dump();
  };
  nlohmann::json bad_m = good_entry;
  bad_m["m"] = -5;
  nlohmann::json bad_type = good_entry;
  bad_type["n"] = "4608";
  nlohmann::json no_algorithm = good_entry;
  no_algorithm.erase("algorithm");
  nlohmann::json bad_dtype = good_entry;
  bad_dtype["dtype"] = "int4";
  nlohmann::json bad_backend = good_entry;
  bad_backend["backend"] = "cutlass";

  struct Case {
    std::string text;
    std::string expect;  // part of the message
  };
  const std::string full = doc_with(good_entry);
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{\"format\": \"slidesparse-tuning\", ", "not valid JSON"},
      {full.substr(0, full.size() / 2), "not valid JSON"},
      {"[1, 2, 3]", "not a SlideSparse tuning table"},
      {"{\"format\": \"something-else\"}", "not a SlideSparse tuning table"},
      {"{\"format\": \"slidesparse-tuning\", \"format_version\": 99}", "format_version 99"},
      {"{\"format\": \"slidesparse-tuning\", \"format_version\": 1}", "hardware"},
      {doc_with(bad_m), "gemm entry 1"},
      {doc_with(bad_type), "\"n\""},
      {doc_with(no_algorithm), "algorithm"},
      {doc_with(bad_dtype), "dtype"},
      {doc_with(bad_backend), "backend"},
      {std::string("\0\xff\xfe garbage", 11), "not valid JSON"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    const fs::path file = tuning_table_dir(dir.path(), key) / kTuningFileCublasLt;
    write_text(file, c.text);
    try {
      load_tuning_table(dir.path(), key);
      ADD_FAILURE() << "accepted: " << c.text.substr(0, 80);
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
      EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
    }
    std::string description;
    EXPECT_EQ(load_tuning_table_or_none(dir.path(), key, &description), nullptr);
    EXPECT_NE(description.find("refused"), std::string::npos) << description;
  }
}

TEST(TuningDb, GoodFolderDescribedForInfo) {
  TempDir dir;
  TuningTable table(h100_key());
  table.put(dense_entry(4608, 3584, 2048, 3));
  table.put(kernel_entry(3584, 2048, 256));
  save_tuning_table(table, dir.path());
  std::string description;
  const auto loaded = load_tuning_table_or_none(dir.path(), h100_key(), &description);
  ASSERT_NE(loaded, nullptr);
  EXPECT_NE(description.find(h100_key().dir_name()), std::string::npos) << description;
  EXPECT_NE(description.find("1 GEMM, 1 kernel"), std::string::npos) << description;

  HardwareKey other = h100_key();
  other.cusparselt = 900;
  EXPECT_EQ(load_tuning_table_or_none(dir.path(), other, &description), nullptr);
  // Says which tables are there instead.
  EXPECT_NE(description.find(h100_key().dir_name()), std::string::npos) << description;
  EXPECT_NE(description.find("no table for " + other.dir_name()), std::string::npos) << description;
}

}  // namespace
}  // namespace slidesparse
