// The recorded-results fixture of the report tests (tests/report/data, written by make_fixture.py):
// its paths and the counts it was built with.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace slidesparse::test {

inline std::filesystem::path fixture_results() {
  return std::filesystem::path(SS_REPORT_TEST_DIR) / "data/results";
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What make_fixture.py wrote.
// 23 prefill int8 + 24 prefill fp8 + 7 decode int8 + 2 simple (the .rerun.json is not a case).
inline constexpr int kFixtureCases = 56;
inline constexpr int kFixtureOk = 30;
inline constexpr int kFixtureFailed = 2;
inline constexpr int kFixtureSkipped = 24;
inline constexpr int kFixtureMissing = 2;

}  // namespace slidesparse::test
