// `slidesparse selftest` run as a program: every pattern passes and the table is complete.
#include <gtest/gtest.h>

#include "cli/run_cli.h"

namespace slidesparse {
namespace {

TEST(SelftestCommand, PassesForEveryPattern) {
  const auto r = test::run_cli("selftest");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("28/28 cases passed"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("FAIL"), std::string::npos) << r.output;
  for (const char* pattern :
       {"\n2:4 ", "\n2:6 ", "\n2:8 ", "\n2:10 ", "\n2:12 ", "\n2:14 ", "\n2:16 "}) {
    EXPECT_NE(r.output.find(pattern), std::string::npos) << pattern;
  }
}

TEST(SelftestCommand, OtherSeedPasses) {
  const auto r = test::run_cli("selftest --seed 12345");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("seed 12345"), std::string::npos) << r.output;
}

TEST(SelftestCommand, BadSeedIsAParseError) {
  const auto r = test::run_cli("selftest --seed banana");
  EXPECT_NE(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace slidesparse
