// `slidesparse selftest`: the CPU losslessness check of the whole method on random data, for
// every pattern 2:4 ... 2:16 and shapes whose K is and is not a multiple of L or 32:
// prune -> Z:L check -> slide -> 2:4 check -> unslide == W -> W.x == W'.lift(x) -> INT8 dense and
// SlideSparse accumulators bit-identical -> FP8 and BF16 layers equal to rounding -> a weight that
// breaks the pattern is refused naming its row and block. Prints a table; exit 1 on any failure.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/core/linear_ref.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"
#include "slidesparse/sparsity.h"

namespace slidesparse::cli {
namespace {

// Float results of the two paths must agree to this relative error (both references sum in
// double and round once, so they are normally identical).
constexpr double kFloatTolerance = 1e-5;

struct CaseShape {
  int64_t m, n, k;
};

// K: a multiple of every L (1680), a multiple of 32 (256), and of neither (100, 37).
const std::vector<CaseShape> kShapes = {{8, 32, 1680}, {16, 24, 256}, {5, 17, 100}, {3, 9, 37}};

struct CaseResult {
  Sparsity sparsity;
  CaseShape shape{};
  int passed = 0;
  int total = 0;
  double max_rel_err = 0.0;
  std::vector<std::string> failures;
};

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  if (std::isnan(diff)) return INFINITY;
  return scale > 0.0 ? diff / scale : diff;
}

class CaseRunner {
 public:
  CaseRunner(Sparsity sparsity, CaseShape shape, uint64_t seed) {
    result_.sparsity = sparsity;
    result_.shape = shape;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    x_.resize(static_cast<size_t>(shape.m * shape.k));
    for (auto& v : x_) v = bf16_from_float(normal(rng));
    weight_.resize(static_cast<size_t>(shape.n * shape.k));
    for (auto& v : weight_) v = 0.05f * normal(rng);
    bias_.resize(static_cast<size_t>(shape.n));
    for (auto& v : bias_) v = 0.1f * normal(rng);
  }

  CaseResult run() {
    const Sparsity sp = result_.sparsity;
    const auto [m, n, k] = result_.shape;
    const int64_t k_slide = sp.k_slide(k);

    check("prune gives " + sp.name(), [&] {
      prune_magnitude<float>(weight_, n, k, sp);
      return !find_pattern_violation<float>(weight_, n, k, sp).has_value();
    });
    check("W' is 2:4", [&] {
      w_slid_ = slide_weights<float>(weight_, n, k, sp);
      check_2to4<float>(*w_slid_, n, k_slide, "W'");
      return k_slide % kSlideKAlign == 0;
    });
    check("unslide(W') == W",
          [&] { return w_slid_ && unslide_weights<float>(*w_slid_, n, k, sp) == weight_; });
    check("W.x == W'.lift(x) (float)", [&] {
      if (!w_slid_) return false;
      const std::vector<float> x = to_float_vector_of(x_);
      const auto dense = gemm_float_ref(x, weight_, m, n, k);
      const auto sparse =
          gemm_float_ref(lift_activations<float>(x, m, k, sp), *w_slid_, m, n, k_slide);
      return within_tolerance(sparse, dense);
    });
    const LinearRefProblem problem{x_, weight_, bias_, m, n, k, DType::kI8};
    check("INT8 accumulators bit-identical", [&] {
      const auto dense = linear_dense_ref(problem);
      const auto slide = linear_slide_ref(problem, sp);
      return slide.acc_int32 == dense.acc_int32 && slide.y_bf16 == dense.y_bf16;
    });
    for (DType compute : {DType::kFP8E4M3, DType::kBF16}) {
      check(std::string(dtype_name(compute)) + " layer to rounding", [&] {
        LinearRefProblem p = problem;
        p.compute = compute;
        const auto dense = linear_dense_ref(p);
        const auto slide = linear_slide_ref(p, sp);
        return within_tolerance(slide.acc_float, dense.acc_float) &&
               within_tolerance(slide.y, dense.y);
      });
    }
    check("broken weight refused", [&] {
      // Fill the last full block of the last row with non-zeros; slide must name that row and
      // that block.
      std::vector<float> broken = weight_;
      const int64_t row = n - 1, block = k >= sp.block() ? k / sp.block() - 1 : 0;
      const int64_t c0 = block * sp.block(), c1 = std::min<int64_t>(c0 + sp.block(), k);
      if (c1 - c0 <= sp.max_nonzeros_per_block()) return true;  // a short tail cannot break it
      for (int64_t c = c0; c < c1; ++c) broken[static_cast<size_t>(row * k + c)] = 1.0f;
      try {
        slide_weights<float>(broken, n, k, sp);
      } catch (const PatternError& e) {
        return e.row() == row && e.block() == block;
      }
      return false;
    });
    return result_;
  }

 private:
  static std::vector<float> to_float_vector_of(const std::vector<bf16_t>& v) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
    return out;
  }

  bool within_tolerance(const std::vector<float>& got, const std::vector<float>& want) {
    const double err = max_rel_diff(got, want);
    result_.max_rel_err = std::max(result_.max_rel_err, err);
    return err <= kFloatTolerance;
  }

  // Runs one check; an exception is a failure that keeps its message.
  void check(const std::string& name, const std::function<bool()>& body) {
    ++result_.total;
    try {
      if (body()) {
        ++result_.passed;
      } else {
        result_.failures.push_back(name);
      }
    } catch (const std::exception& e) {
      result_.failures.push_back(name + ": " + e.what());
    }
  }

  CaseResult result_;
  std::vector<bf16_t> x_;
  std::vector<float> weight_;
  std::vector<float> bias_;
  std::optional<std::vector<float>> w_slid_;
};

// Prints the table and any failure details; returns true when every check passed.
bool run_selftest(uint64_t seed, std::ostream& os) {
  os << "SlideSparse selftest: CPU reference, random data (seed " << seed << ")\n"
     << "checks: prune Z:L, W' 2:4, unslide(W')==W, W.x==W'.lift(x), INT8 acc bit-identical,\n"
     << "        fp8 and bf16 layers dense vs SlideSparse to rounding, broken weight refused\n"
     << "max rel err: largest float-path difference dense vs SlideSparse over max |dense|\n"
     << "(the references sum exact products in double, so 0 is expected; limit " << kFloatTolerance
     << ")\n\n";
  os << std::left << std::setw(9) << "pattern" << std::setw(7) << "gamma" << std::right
     << std::setw(5) << "M" << std::setw(5) << "N" << std::setw(6) << "K" << std::setw(6) << "K'"
     << std::setw(8) << "checks" << std::setw(13) << "max rel err"
     << "  result\n";
  int cases = 0, cases_passed = 0;
  std::vector<std::string> details;
  uint64_t case_seed = seed;
  for (int block = 4; block <= 16; block += 2) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const CaseShape& shape : kShapes) {
      const CaseResult r = CaseRunner(sp, shape, case_seed++).run();
      const bool ok = r.failures.empty() && r.passed == r.total;
      ++cases;
      cases_passed += ok ? 1 : 0;
      std::ostringstream gamma, err, checks;
      gamma << std::fixed << std::setprecision(3) << sp.expansion();
      err << std::scientific << std::setprecision(1) << r.max_rel_err;
      checks << r.passed << "/" << r.total;
      os << std::left << std::setw(9) << sp.name() << std::setw(7) << gamma.str() << std::right
         << std::setw(5) << shape.m << std::setw(5) << shape.n << std::setw(6) << shape.k
         << std::setw(6) << sp.k_slide(shape.k) << std::setw(8) << checks.str() << std::setw(13)
         << err.str() << "  " << (ok ? "PASS" : "FAIL") << "\n";
      for (const std::string& f : r.failures) {
        details.push_back(sp.name() + " M=" + std::to_string(shape.m) + " N=" +
                          std::to_string(shape.n) + " K=" + std::to_string(shape.k) + ": " + f);
      }
    }
  }
  os << "\n" << cases_passed << "/" << cases << " cases passed\n";
  for (const std::string& d : details) os << "FAIL " << d << "\n";
  return cases_passed == cases;
}

}  // namespace

void add_selftest_command(CLI::App& app) {
  auto seed = std::make_shared<uint64_t>(1);
  CLI::App* cmd = app.add_subcommand(
      "selftest", "CPU losslessness check of the sliding window method for 2:4 ... 2:16");
  cmd->add_option("--seed", *seed, "Random seed (default 1)");
  cmd->callback([seed] {
    if (!run_selftest(*seed, std::cout)) throw CLI::RuntimeError(1);
  });
}

}  // namespace slidesparse::cli
