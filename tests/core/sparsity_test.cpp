// The Z:L pattern type: parsing, refusal of Z != 2 / odd L / L < 4, and the K' geometry.
#include "slidesparse/sparsity.h"

#include <gtest/gtest.h>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

TEST(Sparsity, ParsesBothSpellings) {
  EXPECT_EQ(Sparsity::parse("2:8").block(), 8);
  EXPECT_EQ(Sparsity::parse("2_10").block(), 10);
  EXPECT_EQ(Sparsity::from_block(6), Sparsity::parse("2:6"));
  EXPECT_EQ(Sparsity::parse("2:8").name(), "2:8");
  EXPECT_EQ(Sparsity::parse("2:8").dir_name(), "2_8");
  EXPECT_EQ(Sparsity::parse("2:8").density_name(), "6:8");
}

TEST(Sparsity, RefusesWhatIsNotTwoZerosPerEvenBlock) {
  for (const char* bad :
       {"3:8", "4:8", "2:7", "2:2", "2:0", "2:-4", "2:1026", "abc", "2:", ":8", "2:8x", "28", ""}) {
    EXPECT_THROW(Sparsity::parse(bad), Error) << bad;
  }
  EXPECT_THROW(Sparsity::from_block(5), Error);
  EXPECT_THROW(Sparsity::from_block(2), Error);
  try {
    Sparsity::parse("3:8");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Z must be 2"), std::string::npos) << e.what();
  }
  try {
    Sparsity::parse("2:7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("even"), std::string::npos) << e.what();
  }
}

TEST(Sparsity, Geometry) {
  const Sparsity s8 = Sparsity::from_block(8);
  EXPECT_EQ(s8.windows_per_block(), 3);
  EXPECT_EQ(s8.slots_per_block(), 12);
  EXPECT_DOUBLE_EQ(s8.expansion(), 1.5);
  EXPECT_DOUBLE_EQ(s8.speedup_bound(), 4.0 / 3.0);
  EXPECT_EQ(s8.k_slide(4096), 6144);
  EXPECT_EQ(s8.k_slide(7), 32);
  const Sparsity s6 = Sparsity::from_block(6);
  EXPECT_EQ(s6.k_pad(4096), 4098);
  EXPECT_EQ(s6.k_slide_unaligned(4096), 5464);
  EXPECT_EQ(s6.k_slide(4096), 5472);
  EXPECT_DOUBLE_EQ(Sparsity::from_block(4).expansion(), 1.0);
  EXPECT_DOUBLE_EQ(Sparsity::from_block(10).expansion(), 1.6);
  EXPECT_DOUBLE_EQ(Sparsity::from_block(10).speedup_bound(), 1.25);
  // 64-bit K.
  EXPECT_EQ(s8.k_slide(int64_t{1} << 40), (int64_t{1} << 40) / 8 * 12);
}

}  // namespace
}  // namespace slidesparse
