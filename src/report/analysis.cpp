// Derived numbers of the report (see analysis.h).
#include "report/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "slidesparse/error.h"
#include "slidesparse/sparsity.h"

namespace slidesparse::report {

CaseIndex::CaseIndex(const std::vector<CaseResult>& cases) {
  for (const CaseResult& c : cases)
    cases_.emplace(Key{c.stage, c.dtype, c.model, c.variant(), c.m}, &c);
}

const CaseResult* CaseIndex::find(const std::string& stage, const std::string& dtype,
                                  const std::string& model, const std::string& variant,
                                  int64_t m) const {
  auto it = cases_.find(Key{stage, dtype, model, variant, m});
  return it == cases_.end() ? nullptr : it->second;
}

std::optional<double> CaseIndex::tokens_per_s(const std::string& stage, const std::string& dtype,
                                              const std::string& model, const std::string& variant,
                                              int64_t m) const {
  const CaseResult* c = find(stage, dtype, model, variant, m);
  if (c == nullptr || c->status != CaseStatus::kOk || !c->metrics || c->metrics->tokens_per_s <= 0)
    return std::nullopt;
  return c->metrics->tokens_per_s;
}

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i]));
    const bool db = std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

std::vector<StageMatrix> stage_matrices(const std::vector<CaseResult>& cases,
                                        const std::vector<PlannedGroup>& plan) {
  std::map<std::string, std::tuple<std::set<std::string>, std::set<std::string>,
                                   std::set<std::string>, std::set<int64_t>>>
      sets;
  for (const CaseResult& c : cases) {
    auto& [dtypes, models, variants, ms] = sets[c.stage];
    dtypes.insert(c.dtype);
    models.insert(c.model);
    variants.insert(c.variant());
    ms.insert(c.m);
  }
  for (const PlannedGroup& g : plan) {
    auto& [dtypes, models, variants, ms] = sets[g.stage];
    dtypes.insert(g.dtype);
    models.insert(g.model);
    variants.insert(g.variant);
    ms.insert(g.ms.begin(), g.ms.end());
  }
  std::vector<StageMatrix> out;
  for (auto& [stage, s] : sets) {
    auto& [dtypes, models, variants, ms] = s;
    StageMatrix m;
    m.stage = stage;
    m.dtypes.assign(dtypes.begin(), dtypes.end());
    // int8 before fp8 before bf16, as the seed.
    std::sort(m.dtypes.begin(), m.dtypes.end(), [](const std::string& a, const std::string& b) {
      auto rank = [](const std::string& d) {
        return d == "int8" ? 0 : d == "fp8" ? 1 : d == "bf16" ? 2 : 3;
      };
      return std::make_pair(rank(a), a) < std::make_pair(rank(b), b);
    });
    m.models.assign(models.begin(), models.end());
    std::sort(m.models.begin(), m.models.end(), natural_less);
    m.variants.assign(variants.begin(), variants.end());
    std::sort(m.variants.begin(), m.variants.end(), [](const std::string& a, const std::string& b) {
      return std::make_pair(variant_rank(a), a) < std::make_pair(variant_rank(b), b);
    });
    m.ms.assign(ms.begin(), ms.end());
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const StageMatrix& a, const StageMatrix& b) {
    return std::make_pair(stage_rank(a.stage), a.stage) <
           std::make_pair(stage_rank(b.stage), b.stage);
  });
  return out;
}

std::vector<MissingCase> missing_cases(const StageMatrix& matrix, const CaseIndex& index) {
  std::vector<MissingCase> out;
  for (const auto& dtype : matrix.dtypes)
    for (const auto& model : matrix.models)
      for (const auto& variant : matrix.variants)
        for (int64_t m : matrix.ms)
          if (index.find(matrix.stage, dtype, model, variant, m) == nullptr)
            out.push_back({matrix.stage, dtype, model, variant, m});
  return out;
}

PassCount& PassCount::operator+=(const PassCount& o) {
  ok += o.ok;
  failed += o.failed;
  skipped += o.skipped;
  missing += o.missing;
  return *this;
}

PassCount count_cases(const StageMatrix& matrix, const CaseIndex& index, const std::string& dtype,
                      const std::string& variant, const std::string& model) {
  PassCount count;
  for (const auto& mod : matrix.models) {
    if (!model.empty() && mod != model) continue;
    for (int64_t m : matrix.ms) {
      const CaseResult* c = index.find(matrix.stage, dtype, mod, variant, m);
      if (c == nullptr)
        ++count.missing;
      else if (c->status == CaseStatus::kOk)
        ++count.ok;
      else if (c->status == CaseStatus::kFailed)
        ++count.failed;
      else
        ++count.skipped;
    }
  }
  return count;
}

bool is_dense(const std::string& variant) {
  return variant == "cublaslt" || variant == "cublaslt-fa";
}

double speedup_bound(const std::string& pattern) {
  return Sparsity::parse(pattern).speedup_bound();
}

std::optional<double> speedup(const CaseIndex& index, const std::string& stage,
                              const std::string& dtype, const std::string& model,
                              const std::string& pattern, const std::string& baseline, int64_t m) {
  const auto sparse = index.tokens_per_s(stage, dtype, model, pattern, m);
  const auto dense = index.tokens_per_s(stage, dtype, model, baseline, m);
  if (!sparse || !dense) return std::nullopt;
  return *sparse / *dense;
}

std::vector<std::string> baselines_faster_first(const CaseIndex& index, const StageMatrix& matrix,
                                                const std::string& dtype,
                                                const std::string& model) {
  std::vector<std::string> present;
  for (const auto& v : matrix.variants) {
    if (!is_dense(v)) continue;
    for (int64_t m : matrix.ms)
      if (index.tokens_per_s(matrix.stage, dtype, model, v, m)) {
        present.push_back(v);
        break;
      }
  }
  std::vector<int64_t> common;
  for (int64_t m : matrix.ms) {
    bool all = true;
    for (const auto& v : present) all = all && index.tokens_per_s(matrix.stage, dtype, model, v, m);
    if (all) common.push_back(m);
  }
  auto geomean = [&](const std::string& v) {
    double log_sum = 0;
    int n = 0;
    for (int64_t m : matrix.ms) {
      if (!common.empty() && std::find(common.begin(), common.end(), m) == common.end()) continue;
      if (auto t = index.tokens_per_s(matrix.stage, dtype, model, v, m)) {
        log_sum += std::log(*t);
        ++n;
      }
    }
    return n == 0 ? 0.0 : std::exp(log_sum / n);
  };
  std::stable_sort(present.begin(), present.end(), [&](const std::string& a, const std::string& b) {
    return geomean(a) > geomean(b);
  });
  return present;
}

bool has_ok_case(const CaseIndex& index, const StageMatrix& matrix, const std::string& dtype,
                 const std::string& model) {
  for (const auto& v : matrix.variants)
    for (int64_t m : matrix.ms)
      if (index.tokens_per_s(matrix.stage, dtype, model, v, m)) return true;
  return false;
}

}  // namespace slidesparse::report
