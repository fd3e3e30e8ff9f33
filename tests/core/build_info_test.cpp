// The build's identity: the project version and a 12-digit hash of the sources, as case JSONs and
// run.json record it.
#include "slidesparse/build_info.h"

#include <gtest/gtest.h>

#include <regex>

#include "slidesparse/version.h"

namespace slidesparse {
namespace {

TEST(BuildInfo, VersionAndSourceHash) {
  const BuildInfo& b = build_info();
  EXPECT_EQ(b.version, SLIDESPARSE_VERSION);
  EXPECT_TRUE(std::regex_match(b.source_hash, std::regex("[0-9a-f]{12}"))) << b.source_hash;
  EXPECT_EQ(b.id(), b.version + "+src." + b.source_hash);
  EXPECT_EQ(&build_info(), &b);  // one identity per process
}

}  // namespace
}  // namespace slidesparse
