// The process-wide plan cache behind get_gemm_plan: one plan per (problem, algorithm), made on
// first use and shared by every layer with that shape, so forward() only looks plans up.
#include <array>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "gemm/cublaslt_gemm.h"
#include "gemm/gemm_op.h"
#include "slidesparse/error.h"
#ifdef SLIDESPARSE_HAVE_CUSPARSELT
#include "gemm/cusparselt_gemm.h"
#endif

namespace slidesparse {
namespace {

// A strict weak order over everything that makes two plans different.
auto as_tuple(const GemmProblem& p) {
  return std::make_tuple(static_cast<int>(p.backend), static_cast<int>(p.dtype),
                         static_cast<int>(p.out_dtype), p.n, p.k, p.m, p.x_stride(), p.d_stride(),
                         p.scale_per_channel, p.scale_per_token, p.bias, p.sparse_bias,
                         p.fast_accum);
}

auto as_tuple(const std::optional<GemmAlgorithm>& a) {
  if (!a || a->is_default) return std::make_tuple(true, 0, 0, 0, 0, std::array<uint64_t, 8>{});
  return std::make_tuple(false, a->alg_config_id, a->split_k, a->split_k_mode,
                         a->cublaslt_heuristic_index, a->cublaslt_algo);
}

struct Key {
  GemmProblem problem;
  std::optional<GemmAlgorithm> algorithm;
};

struct KeyLess {
  bool operator()(const Key& a, const Key& b) const {
    const auto pa = as_tuple(a.problem), pb = as_tuple(b.problem);
    if (pa != pb) return pa < pb;
    return as_tuple(a.algorithm) < as_tuple(b.algorithm);
  }
};

struct Cache {
  std::mutex mutex;
  std::map<Key, std::shared_ptr<const GemmPlan>, KeyLess> plans;
};

Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

std::string GemmProblem::describe() const {
  std::ostringstream os;
  os << backend_name(backend) << " " << dtype_name(dtype) << "->" << dtype_name(out_dtype)
     << " n=" << n << " k=" << k << " m=" << m;
  if (ld_x > 0 && ld_x != k) os << " ld_x=" << ld_x;
  if (ld_d > 0 && ld_d != n) os << " ld_d=" << ld_d;
  if (scale_per_channel) os << " +scale_per_channel";
  if (scale_per_token) os << " +scale_per_token";
  if (bias) os << " +bias";
  if (fast_accum) os << " +fast_accum";
  return os.str();
}

GemmSupport supports(const GemmProblem& problem) {
  if (problem.backend == GemmBackend::kCublasLt) return cublaslt_supports(problem);
#ifdef SLIDESPARSE_HAVE_CUSPARSELT
  return cusparselt_supports(problem);
#else
  return GemmSupport{false, "cuSPARSELt: this build has no cuSPARSELt (sparse backend not built)"};
#endif
}

std::shared_ptr<const GemmPlan> get_gemm_plan(const GemmProblem& problem,
                                              const std::optional<GemmAlgorithm>& algorithm) {
  Cache& c = cache();
  Key key{problem, algorithm};
  {
    std::lock_guard lock(c.mutex);
    if (auto it = c.plans.find(key); it != c.plans.end()) return it->second;
  }
  if (auto s = supports(problem); !s) throw NotSupportedError(s.reason);
  std::shared_ptr<const GemmPlan> plan;
  if (problem.backend == GemmBackend::kCublasLt) {
    plan = make_cublaslt_plan(problem, algorithm, /*exclusive=*/false);
  } else {
#ifdef SLIDESPARSE_HAVE_CUSPARSELT
    plan = make_cusparselt_plan(problem, algorithm);
#else
    throw NotSupportedError("this build has no cuSPARSELt (sparse backend not built)");
#endif
  }
  std::lock_guard lock(c.mutex);
  auto [it, inserted] = c.plans.emplace(std::move(key), std::move(plan));
  return it->second;
}

std::shared_ptr<const GemmPlan> make_exclusive_gemm_plan(
    const GemmProblem& problem, const std::optional<GemmAlgorithm>& algorithm) {
  if (auto s = supports(problem); !s) throw NotSupportedError(s.reason);
  // cuSPARSELt plans take every pointer per call and never lock: the cached plan is as good.
  if (problem.backend != GemmBackend::kCublasLt) return get_gemm_plan(problem, algorithm);
  return make_cublaslt_plan(problem, algorithm, /*exclusive=*/true);
}

bool gemm_plan_has_run_pointers(const GemmProblem& problem) {
  return problem.backend == GemmBackend::kCublasLt &&
         (problem.scale_per_channel || problem.scale_per_token || problem.bias);
}

void clear_gemm_plan_cache() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.plans.clear();
}

size_t gemm_plan_cache_size() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.plans.size();
}

GemmProblemKey gemm_problem_key(const GemmProblem& problem) {
  GemmProblemKey key;
  key.backend = problem.backend;
  key.dtype = problem.dtype;
  key.out_dtype = problem.out_dtype;
  key.n = problem.n;
  key.k = problem.k;
  key.m = problem.m;
  key.fast_accum = problem.fast_accum;
  return key;
}

}  // namespace slidesparse
