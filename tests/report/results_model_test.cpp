// Parsing of a results folder: cases, run record, tuning tables, kernel sums, inventory, and a
// broken file that must not stop the report.
#include "report/results_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "report/analysis.h"
#include "report_fixture.h"
#include "slidesparse/error.h"

namespace slidesparse::report {
namespace {

using test::fixture_results;

TEST(ResultsModel, ReadsEveryCaseOfTheFixture) {
  const ResultsModel r = load_results(fixture_results());
  ASSERT_EQ(static_cast<int>(r.cases.size()), test::kFixtureCases);
  int ok = 0, failed = 0, skipped = 0;
  for (const auto& c : r.cases) {
    ok += c.status == CaseStatus::kOk;
    failed += c.status == CaseStatus::kFailed;
    skipped += c.status == CaseStatus::kSkipped;
  }
  EXPECT_EQ(ok, test::kFixtureOk);
  EXPECT_EQ(failed, test::kFixtureFailed);
  EXPECT_EQ(skipped, test::kFixtureSkipped);
  EXPECT_TRUE(r.unreadable.empty());
  EXPECT_TRUE(r.other_hardware.empty());
  EXPECT_EQ(r.hardware_key, "NVIDIA_A100-SXM4-80GB_cc80_cuda13.0_cublaslt130100_cusparselt800");
}

TEST(ResultsModel, FailedCaseKeepsItsErrorAndCommand) {
  const ResultsModel r = load_results(fixture_results());
  const CaseIndex index(r.cases);
  const CaseResult* c = index.find("prefill", "int8", "Qwen2.5-7B", "2:8", 2048);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status, CaseStatus::kFailed);
  ASSERT_TRUE(c->error.has_value());
  EXPECT_EQ(c->error->type, "CudaError");
  EXPECT_EQ(c->command,
            "slidesparse bench prefill --model Qwen2.5-7B --dtype int8 --backend cusparselt "
            "--sparsity 2:8 --M 2048");
  const CaseResult* skipped = index.find("prefill", "fp8", "Llama3.2-1B", "cublaslt", 512);
  ASSERT_NE(skipped, nullptr);
  EXPECT_EQ(skipped->status, CaseStatus::kSkipped);
  EXPECT_NE(skipped->skip_reason.find("8.9"), std::string::npos);
}

TEST(ResultsModel, RunRecordTuningKernelAndInventory) {
  const ResultsModel r = load_results(fixture_results());
  ASSERT_TRUE(r.run.has_value());
  EXPECT_EQ(r.run->tasks.size(), 5u);
  EXPECT_TRUE(r.run->finished_at.empty());
  EXPECT_EQ(r.run->notes.size(), 2u);
  ASSERT_EQ(r.tuning_tables.size(), 3u);
  EXPECT_TRUE(r.tuning_tables[0].found);
  EXPECT_EQ(r.tuning_tables[0].entries, 3);
  EXPECT_GT(r.tuning_tables[0].bytes, 0u);
  EXPECT_TRUE(r.tuning_tables[1].found);
  EXPECT_EQ(r.tuning_tables[1].entries, 4);
  EXPECT_FALSE(r.tuning_tables[2].found);  // kernels.json: named but absent
  ASSERT_EQ(r.kernel_benches.size(), 1u);
  EXPECT_EQ(r.kernel_benches[0].sums.size(), 4u);  // the qkv row is not a sum
  int64_t jsons = 0, csvs = 0;
  for (const auto& f : r.inventory) {
    jsons += f.case_jsons;
    csvs += f.csvs;
  }
  EXPECT_EQ(jsons, test::kFixtureCases);
  EXPECT_EQ(csvs, 21);  // one per (stage, dtype, backend/pattern, model)
}

TEST(ResultsModel, MatrixFindsTheMissingCases) {
  const ResultsModel r = load_results(fixture_results());
  const CaseIndex index(r.cases);
  const auto matrices = stage_matrices(r.cases);
  ASSERT_EQ(matrices.size(), 4u);
  EXPECT_EQ(matrices[0].stage, "prefill");
  EXPECT_EQ(matrices[1].stage, "decode");
  EXPECT_EQ(matrices[2].stage, "simple-prefill");  // the simple benchmark's two phases stay apart
  EXPECT_EQ(matrices[3].stage, "simple-decode");
  EXPECT_EQ(matrices[0].variants,
            (std::vector<std::string>{"cublaslt", "cublaslt-fa", "2:4", "2:8"}));
  size_t missing = 0;
  for (const auto& m : matrices) missing += missing_cases(m, index).size();
  EXPECT_EQ(static_cast<int>(missing), test::kFixtureMissing);
  const PassCount all = count_cases(matrices[0], index, "int8", "2:8", "");
  EXPECT_EQ(all.ok, 5);
  EXPECT_EQ(all.failed, 1);
  EXPECT_EQ(all.expected(), 6);
  // cublaslt-fa is 4% faster in the fixture: it comes first.
  EXPECT_EQ(baselines_faster_first(index, matrices[0], "int8", "Qwen2.5-7B"),
            (std::vector<std::string>{"cublaslt-fa", "cublaslt"}));
}

TEST(ResultsModel, FailedRerunBesideAnOkResultIsNotACase) {
  const ResultsModel r = load_results(fixture_results());
  ASSERT_EQ(r.reruns.size(), 1u);
  EXPECT_EQ(r.reruns[0].error_type, "OutOfMemoryError");
  const CaseIndex index(r.cases);
  const CaseResult* kept = index.find("prefill", "int8", "Llama3.2-1B", "2:4", 1024);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->status, CaseStatus::kOk);
}

TEST(ResultsModel, BrokenFileIsListedNotThrown) {
  test::TempDir dir;
  std::filesystem::copy(fixture_results(), dir.path() / "results",
                        std::filesystem::copy_options::recursive);
  std::ofstream(dir.path() / "results" / "prefill" / "broken.json") << "{ not json";
  std::ofstream(dir.path() / "results" / "prefill" / "odd.json")
      << R"({"schema": "slidesparse.case/1", "stage": "prefill"})";
  const ResultsModel r = load_results(dir.path() / "results");
  EXPECT_EQ(static_cast<int>(r.cases.size()), test::kFixtureCases);
  EXPECT_EQ(r.unreadable.size(), 2u);
}

TEST(ResultsModel, MissingFolderThrows) {
  EXPECT_THROW(load_results("/nonexistent/results"), Error);
}

}  // namespace
}  // namespace slidesparse::report

namespace slidesparse::report {
namespace {

TEST(ResultsModel, ModelsInNaturalOrder) {
  EXPECT_TRUE(natural_less("Qwen2.5-7B", "Qwen2.5-14B"));
  EXPECT_FALSE(natural_less("Qwen2.5-14B", "Qwen2.5-7B"));
  EXPECT_TRUE(natural_less("Llama3.2-3B", "Qwen2.5-7B"));
  EXPECT_TRUE(natural_less("a", "a1"));
  EXPECT_FALSE(natural_less("a", "a"));
}

}  // namespace
}  // namespace slidesparse::report

namespace slidesparse::report {
namespace {

// run.json of the fixture with `options` set (as prepare-bench writes them) and kernels.json named
// by both tuning tasks.
std::filesystem::path fixture_with_options(const test::TempDir& dir,
                                           const nlohmann::json& options) {
  const std::filesystem::path results = dir.path() / "results";
  std::filesystem::copy(fixture_results(), results, std::filesystem::copy_options::recursive);
  nlohmann::json run = nlohmann::json::parse(test::read_text(results / "run.json"));
  run["options"] = options;
  for (auto& task : run["tasks"])
    if (task["id"] == 3)
      task["outputs"].push_back(
          "tuning/NVIDIA_A100-SXM4-80GB_cc80_cuda13.0_cublaslt130100_cusparselt800/kernels.json");
  std::ofstream(results / "run.json") << run.dump(1);
  return results;
}

TEST(ResultsModel, CasesTheRunPlannedButNeverReachedAreMissing) {
  test::TempDir dir;
  // Qwen2.5-14B is in the plan and has no case at all: each of its cases must count missing.
  const nlohmann::json options = {{"models", {"Llama3.2-1B", "Qwen2.5-7B", "Qwen2.5-14B"}},
                                  {"dtypes", {"int8"}},
                                  {"backends", {"cublaslt", "2:4"}},
                                  {"tasks", {3, 4, 5, 6, 7}},
                                  {"prefill_M", {512}},
                                  {"decode_M", {64, 128}}};
  const ResultsModel r = load_results(fixture_with_options(dir, options));
  ASSERT_TRUE(r.run.has_value());
  EXPECT_TRUE(r.run->plan_error.empty()) << r.run->plan_error;
  // 3 stages x ... : prefill and decode 3 models x 2 backends, simple 2 phases x 2 backends.
  EXPECT_EQ(r.run->plan.size(), 3u * 2u * 2u + 2u * 2u);
  const CaseIndex index(r.cases);
  const auto matrices = stage_matrices(r.cases, r.run->plan);
  std::vector<MissingCase> missing;
  for (const auto& m : matrices) {
    auto here = missing_cases(m, index);
    missing.insert(missing.end(), here.begin(), here.end());
  }
  auto is_missing = [&](const std::string& stage, const std::string& model,
                        const std::string& variant, int64_t m) {
    return std::any_of(missing.begin(), missing.end(), [&](const MissingCase& c) {
      return c.stage == stage && c.dtype == "int8" && c.model == model && c.variant == variant &&
             c.m == m;
    });
  };
  EXPECT_TRUE(is_missing("decode", "Qwen2.5-14B", "cublaslt", 64));
  EXPECT_TRUE(is_missing("decode", "Qwen2.5-14B", "2:4", 128));
  EXPECT_TRUE(is_missing("prefill", "Qwen2.5-14B", "2:4", 512));
  // Without the plan the matrix is only what was recorded: Qwen2.5-14B is unknown.
  for (const auto& m : stage_matrices(r.cases))
    EXPECT_EQ(std::count(m.models.begin(), m.models.end(), "Qwen2.5-14B"), 0) << m.stage;
  // kernels.json, named by tasks 3 and 4, is one table.
  ASSERT_EQ(r.tuning_tables.size(), 3u);
  EXPECT_EQ(r.tuning_tables[1].tasks, (std::vector<int>{3, 4}));
}

TEST(ResultsModel, EveryCallsPlanCountsNotOnlyTheLast) {
  test::TempDir dir;
  const nlohmann::json last = {{"models", {"Llama3.2-1B"}}, {"dtypes", {"int8"}},
                               {"backends", {"cublaslt"}},  {"tasks", {7}},
                               {"prefill_M", {512}},        {"decode_M", {64}}};
  nlohmann::json first = last;  // an earlier call of the run planned Qwen2.5-14B prefill too
  first["models"] = {"Qwen2.5-14B"};
  first["tasks"] = {6};
  const std::filesystem::path results = fixture_with_options(dir, last);
  nlohmann::json run = nlohmann::json::parse(test::read_text(results / "run.json"));
  run["plans"] = {first, last};
  std::ofstream(results / "run.json") << run.dump(1);
  const ResultsModel r = load_results(results);
  ASSERT_TRUE(r.run.has_value());
  EXPECT_EQ(r.run->plan.size(), 2u);
  const CaseIndex index(r.cases);
  bool fourteen_b_missing = false;
  for (const auto& m : stage_matrices(r.cases, r.run->plan))
    for (const auto& c : missing_cases(m, index))
      fourteen_b_missing |= c.stage == "prefill" && c.model == "Qwen2.5-14B" && c.m == 512;
  EXPECT_TRUE(fourteen_b_missing);
}

TEST(ResultsModel, OptionsThatCannotBeExpandedAreSaidNotThrown) {
  test::TempDir dir;
  const nlohmann::json options = {{"models", {"Llama3.2-1B"}}, {"dtypes", {"int8"}},
                                  {"backends", {"2:5"}},       {"tasks", {6}},
                                  {"prefill_M", {512}},        {"decode_M", {64}}};
  const ResultsModel r = load_results(fixture_with_options(dir, options));
  ASSERT_TRUE(r.run.has_value());
  EXPECT_TRUE(r.run->plan.empty());
  EXPECT_NE(r.run->plan_error.find("run.json options"), std::string::npos);
  EXPECT_EQ(static_cast<int>(r.cases.size()), test::kFixtureCases);
}

}  // namespace
}  // namespace slidesparse::report
