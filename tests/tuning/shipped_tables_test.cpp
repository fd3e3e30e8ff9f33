// The tuning tables committed under the source tree's tuning/ (one folder per hardware key):
// each must load under the key its folder names, hold GEMM entries for both backends, and give
// every sparse entry the dense comparison the dispatch will need. Catches a table committed from
// a cut-off device run or edited by hand.
#include <gtest/gtest.h>

#include <filesystem>

#include "slidesparse/tuning/tuning_db.h"
#include "slidesparse/tuning/tuning_lookup.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

TEST(ShippedTuningTables, EachLoadsUnderItsOwnKey) {
  const fs::path root = default_tuning_dir();
  const std::vector<std::string> keys = list_tuning_keys(root);
  ASSERT_FALSE(keys.empty()) << "no tuning tables under " << root;
  for (const std::string& dir : keys) {
    SCOPED_TRACE(dir);
    const TuningTable header = read_tuning_file(root / dir / kTuningFileCusparseLt);
    EXPECT_EQ(header.hardware().dir_name(), dir);
    const TuningTable table = load_tuning_table(root, header.hardware());  // throws if any file
                                                                           // names another key
    size_t dense = 0, sparse = 0;
    for (const GemmTuningEntry& e : table.gemm_entries()) {
      EXPECT_GT(e.time_us, 0) << e.key.m;
      if (e.key.backend == GemmBackend::kCusparseLt) {
        ++sparse;
        EXPECT_TRUE(e.dense_time_us.has_value()) << "sparse entry without its dense time";
        EXPECT_TRUE(e.sparse_beats_dense.has_value());
        EXPECT_FALSE(e.sparsity.empty());
      } else {
        ++dense;
      }
    }
    EXPECT_GT(dense, 0u);
    EXPECT_GT(sparse, 0u);
    EXPECT_GT(table.kernel_count(), 0u);
  }
}

}  // namespace
}  // namespace slidesparse
