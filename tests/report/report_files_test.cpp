// The written report: files in place and atomic, the page checked by Python's HTML and XML parsers,
// rendered by headless Chromium without errors, and the `slidesparse report` command end to end.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

#include "common/temp_dir.h"
#include "io/atomic_file.h"
#include "report/report.h"
#include "report_fixture.h"
#include "slidesparse/error.h"

namespace slidesparse::report {
namespace {

namespace fs = std::filesystem;
using test::fixture_results;
using test::read_text;

// The folder of this test's Python checkers: the parent of its data folder.
const std::string kTestDir = std::string(SS_REPORT_TEST_DIR);

int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_program(const std::string& name) {
  return run_shell("command -v " + name + " >/dev/null 2>&1") == 0;
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"})
    if (have_program(name)) return name;
  return {};
}

TEST(ReportFiles, WritesMarkdownHtmlAndCharts) {
  test::TempDir dir;
  const ReportFiles files = write_report(fixture_results(), {dir.path(), Lang::kEnglish});
  EXPECT_EQ(files.markdown, dir.path() / "report.md");
  EXPECT_TRUE(fs::is_regular_file(files.markdown));
  EXPECT_TRUE(fs::is_regular_file(files.html));
  ASSERT_FALSE(files.charts.empty());
  for (const auto& c : files.charts) EXPECT_TRUE(fs::is_regular_file(c)) << c;
  // No temporary left behind.
  for (const auto& e : fs::recursive_directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  // A stale chart of an earlier report goes; a second run gives the same bytes.
  write_file_atomic(dir.path() / "charts" / "chart-old.svg", "<svg/>");
  const std::string first = read_text(files.html);
  write_report(fixture_results(), {dir.path(), Lang::kEnglish});
  EXPECT_FALSE(fs::exists(dir.path() / "charts" / "chart-old.svg"));
  EXPECT_EQ(read_text(files.html), first);
}

TEST(ReportFiles, ReportInsideTheResultsFolderIsNotCountedAsAResult) {
  test::TempDir dir;
  fs::copy(fixture_results(), dir.path() / "results", fs::copy_options::recursive);
  write_report(dir.path() / "results", {});
  const std::string first = read_text(dir.path() / "results" / "report.md");
  write_report(dir.path() / "results", {});
  EXPECT_EQ(read_text(dir.path() / "results" / "report.md"), first);
}

TEST(ReportFiles, NoRunJsonIsAPartialRunToo) {
  test::TempDir dir;
  fs::copy(fixture_results(), dir.path() / "results", fs::copy_options::recursive);
  fs::remove(dir.path() / "results" / "run.json");
  const ReportFiles files =
      write_report(dir.path() / "results", {dir.path() / "out", Lang::kEnglish});
  const std::string md = read_text(files.markdown);
  EXPECT_NE(md.find("Partial run: no run.json"), std::string::npos);
  EXPECT_NE(md.find("The results hold no run.json"), std::string::npos);
}

// prepare-bench writes the report before it stamps finished_at: a complete run without it is
// not called partial.
TEST(ReportFiles, CompleteRunWithoutFinishTimeIsNotPartial) {
  test::TempDir dir;
  const fs::path results = dir.path() / "results";
  const fs::path json = results / "prefill" / "H200_cc90_INT8_cuda13.0" / "cublaslt" / "json";
  fs::create_directories(json);
  write_file_atomic(json / "Llama3.2-1B_M512.json", R"({"schema": "slidesparse.case/1", "task": 6,
    "stage": "prefill", "model": "Llama3.2-1B", "dtype": "int8", "backend": "cublaslt",
    "sparsity": null, "M": 512, "status": "ok", "error": null, "skip_reason": null,
    "command": "slidesparse bench prefill --model Llama3.2-1B --M 512", "hardware_key": "HW",
    "gpu": null, "started_at": "t", "wall_s": 1.0,
    "metrics": {"tokens_per_s": 1000.0, "elapsed_s": 0.5}})");
  write_file_atomic(results / "run.json", R"({"schema": "slidesparse.run/1", "hardware_key": "HW",
    "gpu": null, "versions": {}, "started_at": "t", "finished_at": null,
    "tasks": [{"id": 6, "name": "prefill throughput", "status": "succeeded", "ok": 1}], "notes": []})");
  const ReportFiles files = write_report(results, {dir.path() / "out", Lang::kEnglish});
  const std::string md = read_text(files.markdown);
  EXPECT_EQ(md.find("Partial run"), std::string::npos);
  EXPECT_NE(md.find("| 1,000 |"), std::string::npos);
  EXPECT_NE(md.find("No case failed."), std::string::npos);
  EXPECT_NE(md.find("Nothing is missing"), std::string::npos);
}

// HTML and XML parsers of python3 on the page and every SVG (tests/report/check_report.py).
TEST(ReportFiles, PageParsesAndSvgIsWellFormed) {
  if (!have_program("python3"))
    GTEST_SKIP() << "python3 is not installed: cannot run the HTML/XML parsers";
  for (Lang lang : {Lang::kEnglish, Lang::kChinese}) {
    test::TempDir dir;
    write_report(fixture_results(), {dir.path(), lang});
    const std::string cmd =
        std::string("python3 '") + kTestDir + "/check_report.py' '" + dir.path().string() + "'";
    EXPECT_EQ(run_shell(cmd), 0) << cmd;
  }
}

// The page in a real browser: headless Chromium renders it to a PNG that is not blank, and logs no
// console message (the page has no scripts; anything there is an error).
TEST(ReportFiles, RendersInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty())
    GTEST_SKIP()
        << "chromium is not installed (scripts/install_deps.sh installs the Debian package)";
  test::TempDir dir;
  const ReportFiles files = write_report(fixture_results(), {dir.path(), Lang::kEnglish});
  const fs::path png = dir.path() / "screenshot.png";
  const fs::path log = dir.path() / "chromium.log";
  const std::string cmd = "timeout 120 " + chromium +
                          " --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars"
                          " --user-data-dir='" +
                          (dir.path() / "profile").string() +
                          "' --enable-logging=stderr --v=0 --window-size=1280,4000 --screenshot='" +
                          png.string() + "' 'file://" + fs::absolute(files.html).string() + "' >'" +
                          log.string() + "' 2>&1";
  const int rc = run_shell(cmd);
  const std::string output = read_text(log);
  if (rc != 0 && !fs::exists(png) &&
      (output.find("Missing X server") != std::string::npos ||
       output.find("cannot open display") != std::string::npos || rc == 124))
    GTEST_SKIP() << "chromium cannot run here (rc " << rc << "): " << output.substr(0, 400);
  ASSERT_EQ(rc, 0) << output;
  ASSERT_TRUE(fs::exists(png)) << output;
  EXPECT_GT(fs::file_size(png), 20000u);
  // Console messages are logged as ":CONSOLE(" / ":CONSOLE:" lines.
  EXPECT_EQ(output.find(":CONSOLE"), std::string::npos) << output;
  if (have_program("python3")) {
    const std::string check =
        std::string("python3 '") + kTestDir + "/check_screenshot.py' '" + png.string() + "'";
    EXPECT_EQ(run_shell(check), 0) << check;
  }
}

TEST(ReportCli, WritesTheReportAndRefusesABadLanguage) {
  // Every test executable depends on the program (tests/CMakeLists.txt): missing is a failure.
  ASSERT_TRUE(fs::exists(SS_CLI_PATH)) << "the slidesparse program is not built: " << SS_CLI_PATH;
  test::TempDir dir;
  const std::string base = std::string("'") + SS_CLI_PATH + "' report '" +
                           fixture_results().string() + "' --out '" + dir.path().string() + "'";
  EXPECT_EQ(run_shell(base + " --lang zh >/dev/null 2>&1"), 0);
  EXPECT_NE(read_text(dir.path() / "report.md").find("## 失败的用例"), std::string::npos);
  // The program writes what the library writes.
  test::TempDir lib;
  write_report(fixture_results(), {lib.path(), Lang::kChinese});
  EXPECT_EQ(read_text(dir.path() / "report.md"), read_text(lib.path() / "report.md"));
  EXPECT_EQ(read_text(dir.path() / "report.html"), read_text(lib.path() / "report.html"));
  EXPECT_TRUE(fs::exists(dir.path() / "report.html"));
  EXPECT_NE(run_shell(base + " --lang de >/dev/null 2>&1"), 0);
  EXPECT_NE(run_shell(std::string("'") + SS_CLI_PATH + "' report /nonexistent >/dev/null 2>&1"), 0);
}

}  // namespace
}  // namespace slidesparse::report
