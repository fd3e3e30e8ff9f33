// `slidesparse info` run as a program: the pattern table, one pattern, and a refused pattern.
#include <gtest/gtest.h>

#include "cli/run_cli.h"

namespace slidesparse {
namespace {

TEST(InfoCommand, ListsEveryPatternAndTheDevice) {
  const auto r = test::run_cli("info");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* row : {"2:4      2:4", "2:6      4:6", "2:8      6:8", "2:10     8:10",
                          "2:12     10:12", "2:14     12:14", "2:16     14:16"}) {
    EXPECT_NE(r.output.find(row), std::string::npos) << row << "\n" << r.output;
  }
  EXPECT_NE(r.output.find("K' = ceil(K/L)*4(N-1) rounded up to 32"), std::string::npos);
  EXPECT_NE(r.output.find("6144"), std::string::npos) << "K' of 2:8 at K = 4096";
  EXPECT_NE(r.output.find("GPU"), std::string::npos);
  EXPECT_NE(r.output.find("cuBLASLt"), std::string::npos);
  EXPECT_NE(r.output.find("cuSPARSELt"), std::string::npos);
}

TEST(InfoCommand, OnePattern) {
  const auto r = test::run_cli("info --sparsity 2:8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2:8      6:8      25.0%   1.500"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1.333x"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("2:6 "), std::string::npos) << r.output;
}

TEST(InfoCommand, InvalidPatternFailsWithReason) {
  const auto r = test::run_cli("info --sparsity 3:8");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("invalid sparsity '3:8'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Z must be 2"), std::string::npos) << r.output;
  const auto odd = test::run_cli("info --sparsity 2:7");
  EXPECT_NE(odd.exit_code, 0) << odd.output;
  EXPECT_NE(odd.output.find("even"), std::string::npos) << odd.output;
}

TEST(InfoCommand, GpuPresentProbeIsQuiet) {
  const auto r = test::run_cli("info --gpu-present");
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.exit_code;
  EXPECT_EQ(r.output, "");
}

}  // namespace
}  // namespace slidesparse
