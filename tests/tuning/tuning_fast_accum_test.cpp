// The tuning key keeps FP8 fast-accumulation entries apart from default-accumulation ones: a
// table written before the field existed loads as default accumulation and never answers a
// fast-accumulation lookup. (CPU only: no GPU needed.)
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gemm/gemm_op.h"
#include "slidesparse/tuning/tuning_db.h"

namespace slidesparse {
namespace {

GemmTuningEntry entry(bool fast_accum, int heuristic) {
  GemmTuningEntry e;
  e.key.backend = GemmBackend::kCublasLt;
  e.key.dtype = DType::kFP8E4M3;
  e.key.out_dtype = DType::kF32;
  e.key.n = 4608;
  e.key.k = 3584;
  e.key.m = 2048;
  e.key.fast_accum = fast_accum;
  e.algorithm.is_default = false;
  e.algorithm.cublaslt_heuristic_index = heuristic;
  e.time_us = 10;
  return e;
}

TEST(TuningFastAccum, KeysDoNotMix) {
  TuningTable table;
  table.put(entry(false, 3));
  GemmProblemKey fast = entry(true, 0).key;
  EXPECT_EQ(table.find_gemm(fast), nullptr) << "a default-accumulation entry answered fast_accum";
  ASSERT_NE(table.find_gemm(entry(false, 0).key), nullptr);
  table.put(entry(true, 5));
  ASSERT_NE(table.find_gemm(fast), nullptr);
  EXPECT_EQ(table.find_gemm(fast)->algorithm.cublaslt_heuristic_index, 5);
  EXPECT_EQ(table.find_gemm(entry(false, 0).key)->algorithm.cublaslt_heuristic_index, 3);
  EXPECT_EQ(table.gemm_count(), 2u);
}

TEST(TuningFastAccum, OldEntriesLoadAsDefaultAccumulation) {
  nlohmann::json j = entry(false, 2);
  EXPECT_FALSE(j.contains("fast_accum")) << "default entries are written as before";
  const GemmTuningEntry back = j.get<GemmTuningEntry>();
  EXPECT_FALSE(back.key.fast_accum);
  nlohmann::json jf = entry(true, 2);
  EXPECT_EQ(jf.at("fast_accum"), true);
  EXPECT_TRUE(jf.get<GemmTuningEntry>().key.fast_accum);
}

TEST(TuningFastAccum, ProblemKeyAndDescriptionCarryIt) {
  GemmProblem p;
  p.backend = GemmBackend::kCublasLt;
  p.dtype = DType::kFP8E4M3;
  p.out_dtype = DType::kF32;
  p.n = p.k = p.m = 64;
  EXPECT_FALSE(gemm_problem_key(p).fast_accum);
  EXPECT_EQ(p.describe().find("fast_accum"), std::string::npos);
  p.fast_accum = true;
  EXPECT_TRUE(gemm_problem_key(p).fast_accum);
  EXPECT_NE(p.describe().find("+fast_accum"), std::string::npos);
}

}  // namespace
}  // namespace slidesparse
