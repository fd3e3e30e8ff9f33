// The report writes every number one way.
#include "report/number_format.h"

#include <gtest/gtest.h>

#include "report/markup_escape.h"

namespace slidesparse::report {
namespace {

TEST(NumberFormat, Values) {
  EXPECT_EQ(format_count(0), "0");
  EXPECT_EQ(format_count(1234567), "1,234,567");
  EXPECT_EQ(format_rate(123456.7), "123,457");
  EXPECT_EQ(format_rate(12.345), "12.3");
  EXPECT_EQ(format_ratio(1.3333), "1.33×");
  EXPECT_EQ(format_seconds(12.34), "12.3 s");
  EXPECT_EQ(format_seconds(245), "4 min 05 s");
  EXPECT_EQ(format_seconds(3600 * 9 + 4.8 * 60), "9 h 04 min");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(66335), "64.8 KiB");
  EXPECT_EQ(format_millijoules(0.0132), "13.2");
  EXPECT_EQ(format_percent_change(-0.081), "−8.1%");
  EXPECT_EQ(format_percent_change(0.02), "+2.0%");
  EXPECT_EQ(format_axis(120000), "120k");
  EXPECT_EQ(format_axis(1.25), "1.25");
  EXPECT_EQ(format_data(1.0 / 3), "0.3333333333");
  EXPECT_EQ(format_library_version("cublaslt", "130100"), "13.1.0 (130100)");
  EXPECT_EQ(format_library_version("cusparselt", "800"), "0.8.0 (800)");
  EXPECT_EQ(format_library_version("cuda", "13.0"), "13.0");
}

TEST(MarkupEscape, XmlAndMarkdown) {
  EXPECT_EQ(escape_xml("a<b & \"c\"\x01"), "a&lt;b &amp; &quot;c&quot;");
  EXPECT_EQ(escape_markdown_cell("x | y\nz", false), "x \\| y z");
  EXPECT_EQ(escape_markdown_cell("a`b", true), "``a`b``");
  EXPECT_EQ(escape_markdown_text("*a_b*"), "\\*a\\_b\\*");
}

}  // namespace
}  // namespace slidesparse::report
