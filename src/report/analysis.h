// Numbers derived from the recorded cases, shared by every section and chart so a value is
// computed once: the matrix each stage ran (and so what is missing), pass counts, the two dense
// baselines ordered faster first, and speed-ups of a pattern over a baseline.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "report/results_model.h"

namespace slidesparse::report {

// Lookup of cases by (stage, dtype, model, variant, M).
class CaseIndex {
 public:
  explicit CaseIndex(const std::vector<CaseResult>& cases);
  const CaseResult* find(const std::string& stage, const std::string& dtype,
                         const std::string& model, const std::string& variant, int64_t m) const;
  // tokens/s of an ok case, else nullopt.
  std::optional<double> tokens_per_s(const std::string& stage, const std::string& dtype,
                                     const std::string& model, const std::string& variant,
                                     int64_t m) const;

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string, int64_t>;
  std::map<Key, const CaseResult*> cases_;
};

// The matrix of one stage: every dtype × model × variant × M that any of its cases or any group the
// run planned names (so a partial run's cases not yet run count as missing).
struct StageMatrix {
  std::string stage;
  std::vector<std::string> dtypes;
  std::vector<std::string> models;
  std::vector<std::string> variants;  // ordered by variant_rank
  std::vector<int64_t> ms;
};

std::vector<StageMatrix> stage_matrices(const std::vector<CaseResult>& cases,
                                        const std::vector<PlannedGroup>& plan = {});

// Names with numbers compared by value: "Qwen2.5-7B" before "Qwen2.5-14B" (models in every table).
bool natural_less(const std::string& a, const std::string& b);

struct MissingCase {
  std::string stage, dtype, model, variant;
  int64_t m = 0;
};
std::vector<MissingCase> missing_cases(const StageMatrix& matrix, const CaseIndex& index);

struct PassCount {
  int64_t ok = 0, failed = 0, skipped = 0, missing = 0;
  int64_t expected() const { return ok + failed + skipped + missing; }
  PassCount& operator+=(const PassCount& o);
};
// Cases of one (dtype, variant) of the stage, for one model or (model empty) all of them.
PassCount count_cases(const StageMatrix& matrix, const CaseIndex& index, const std::string& dtype,
                      const std::string& variant, const std::string& model);

bool is_dense(const std::string& variant);  // cublaslt, cublaslt-fa
// L/(L-2) of a pattern ("2:8" -> 1.333).
double speedup_bound(const std::string& pattern);

// tok/s of `pattern` over tok/s of `baseline` at M; nullopt unless both cases are ok.
std::optional<double> speedup(const CaseIndex& index, const std::string& stage,
                              const std::string& dtype, const std::string& model,
                              const std::string& pattern, const std::string& baseline, int64_t m);

// The dense baselines with at least one ok case for (stage, dtype, model), the faster first:
// higher geometric mean tok/s over the Ms where all of them are ok (else over their own ok Ms).
std::vector<std::string> baselines_faster_first(const CaseIndex& index, const StageMatrix& matrix,
                                                const std::string& dtype, const std::string& model);

// Whether any case of (stage, dtype, model) is ok.
bool has_ok_case(const CaseIndex& index, const StageMatrix& matrix, const std::string& dtype,
                 const std::string& model);

}  // namespace slidesparse::report
