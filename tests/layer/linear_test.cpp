// Linear (cuBLASLt) and SlideSparseLinear (cuSPARSELt) against the CPU reference layer
// (core/linear_ref.h) for every precision x L in {4, 6, 8, 10, 12} x awkward shapes, both
// epilogues. Stated tolerances:
//   INT8, kernel epilogue: accumulators equal the reference exactly, sparse == dense bit for bit,
//        and y equals the reference's bf16 y bit for bit (dequant is bit-equal to dequant_ref).
//   INT8, fused (sparse: bf16 intermediate, then s_x + bias): per element within one bf16
//        rounding of each of the two roundings: |y - ref| <= 2^-8 (|ref| + |ref - bias|).
//   FP8: ||y - ref|| / ||ref|| <= 4e-3 and max |y - ref| <= 1e-2 max |ref|.
//   BF16: ||y - ref|| / ||ref|| <= 8e-3 and max |y - ref| <= 2e-2 max |ref|.
// No NaN anywhere; outputs are poisoned (NaN) before every run.
#include "slidesparse/layer/linear.h"

#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/gpu_skip.h"
#include "gemm/gemm_op.h"
#include "layer/layer_test_util.h"
#include "slidesparse/core/linear_ref.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using test::bf16_to_float;
using test::error_stats;
using test::poisoned;
using test::rows_to_host;
using test::scratch_for;
using test::to_device;
using test::to_host;
using test::view;

struct Shape {
  int64_t m, n, k;
};
// K = 998 and 134 are multiples of neither L (4..12) nor 32; N not a multiple of 32.
const Shape kShapes[] = {{1, 100, 998}, {17, 72, 134}, {1000, 96, 998}};

struct Case {
  DType compute;
  int block;
  int shape;
};

std::string case_text(const Case& c) {
  const Shape& s = kShapes[c.shape];
  return std::string(dtype_name(c.compute)) + "_L" + std::to_string(c.block) + "_M" +
         std::to_string(s.m) + "_N" + std::to_string(s.n) + "_K" + std::to_string(s.k);
}
std::string case_name(const testing::TestParamInfo<Case>& info) { return case_text(info.param); }
// GoogleTest prints the parameter after the name (and CMake's test discovery keeps it): print
// the same text instead of the struct's bytes, whose padding is uninitialised.
void PrintTo(const Case& c, std::ostream* os) { *os << case_text(c); }

class LinearVsReference : public testing::TestWithParam<Case> {};

struct Output {
  std::vector<bf16_t> y;
  std::vector<float> y_float;
};

// Prepares M, runs forward on a fresh poisoned scratch (kept in *scratch_out when asked, for the
// accumulator) and returns y.
Output run_layer(LinearLayer& layer, const DeviceBuffer& x, int64_t m,
                 DeviceBuffer* scratch_out = nullptr) {
  layer.prepare(m);
  DeviceBuffer scratch = scratch_for(layer, m);
  DeviceBuffer y = poisoned(static_cast<size_t>(m) * layer.n() * 2);
  layer.forward(nullptr, x.get(), m, LinearOutput{y.get()}, view(scratch));
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  Output out;
  out.y = to_host<bf16_t>(y.get(), static_cast<size_t>(m) * layer.n());
  out.y_float = bf16_to_float(out.y);
  if (scratch_out) *scratch_out = std::move(scratch);
  return out;
}

bool bits_equal(const std::vector<bf16_t>& a, const std::vector<bf16_t>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(bf16_t)) == 0;
}

void expect_within_two_roundings(const std::vector<float>& y, const LinearRefResult& ref,
                                 const std::vector<float>& bias, int64_t n, const char* what) {
  int64_t bad = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double r = ref.y[i];
    const double b = bias.empty() ? 0.0 : bias[i % n];
    const double tol = std::ldexp(std::abs(r) + std::abs(r - b), -8) * 1.01 + 1e-6;
    if (!(std::abs(y[i] - r) <= tol)) {
      if (bad < 5)
        ADD_FAILURE() << what << ": element " << i << " = " << y[i] << ", reference " << r
                      << ", tolerance " << tol;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST_P(LinearVsReference, DenseAndSlideSparseBothEpilogues) {
  SS_SKIP_WITHOUT_GPU();
  const Case c = GetParam();
  if (c.compute == DType::kFP8E4M3) SS_SKIP_WITHOUT_FP8();
  const Shape s = kShapes[c.shape];
  const Sparsity sparsity = Sparsity::from_block(c.block);
  std::mt19937 rng(1000u * c.block + 10u * c.shape + static_cast<unsigned>(c.compute));
  const std::vector<bf16_t> x = to_bf16_vector(test::random_normal(s.m * s.k, rng));
  std::vector<float> w = test::random_normal(s.n * s.k, rng, 0.05f);
  prune_magnitude<float>(w, s.n, s.k, sparsity);
  const std::vector<float> bias = test::random_normal(s.n, rng, 0.5f);

  LinearRefProblem p{x, w, bias, s.m, s.n, s.k, c.compute};
  const LinearRefResult ref_dense = linear_dense_ref(p);
  const LinearRefResult ref_slide = linear_slide_ref(p, sparsity);
  const DeviceBuffer dx = to_device(x);
  const HostWeight hw{DType::kF32, w.data(), s.n, s.k};

  for (Epilogue epilogue : {Epilogue::kKernel, Epilogue::kFused}) {
    SCOPED_TRACE(std::string("epilogue ") + std::string(epilogue_name(epilogue)));
    LinearOptions options{c.compute, epilogue, /*use_tuning=*/false, std::nullopt};
    // Every case here is supported on a GPU that runs its dtype: a refusal is a failure.
    std::optional<Linear> dense;
    std::optional<SlideSparseLinear> sparse;
    dense.emplace(hw, bias, options);
    sparse.emplace(hw, sparsity, bias, options);
    DeviceBuffer dense_scratch, sparse_scratch;
    const Output yd = run_layer(*dense, dx, s.m, &dense_scratch);
    const AccumulatorView acc_d = dense->accumulator(s.m, view(dense_scratch));
    std::vector<int32_t> dense_acc;
    if (dense->epilogue() == Epilogue::kKernel && c.compute == DType::kI8)
      dense_acc = rows_to_host<int32_t>(acc_d.data, s.m, s.n, acc_d.ld);
    const Output ys = run_layer(*sparse, dx, s.m, &sparse_scratch);

    EXPECT_FALSE(sparse->gemm_choice(s.m).tuned);
    EXPECT_TRUE(sparse->gemm_choice(s.m).algorithm.is_default);

    if (c.compute == DType::kI8) {
      EXPECT_EQ(dense->epilogue(), Epilogue::kKernel) << "cuBLASLt INT8 has no fused epilogue";
      EXPECT_EQ(dense_acc, ref_dense.acc_int32) << "dense int32 accumulator vs reference";
      EXPECT_TRUE(bits_equal(yd.y, ref_dense.y_bf16)) << "dense y vs reference, bit for bit";
      if (epilogue == Epilogue::kKernel) {
        const AccumulatorView acc_s = sparse->accumulator(s.m, view(sparse_scratch));
        ASSERT_EQ(acc_s.dtype, DType::kI32);
        const auto sparse_acc = rows_to_host<int32_t>(acc_s.data, s.m, s.n, acc_s.ld);
        EXPECT_EQ(sparse_acc, dense_acc) << "sparse int32 accumulator == dense, bit for bit";
        EXPECT_TRUE(bits_equal(ys.y, yd.y)) << "sparse layer == dense layer, bit for bit";
      } else {
        expect_within_two_roundings(ys.y_float, ref_slide, bias, s.n, "sparse fused int8");
      }
      continue;
    }
    const double rel_tol = c.compute == DType::kFP8E4M3 ? 4e-3 : 8e-3;
    const double abs_tol = c.compute == DType::kFP8E4M3 ? 1e-2 : 2e-2;
    for (const auto& [name, out, ref] :
         {std::tuple{"dense", &yd, &ref_dense}, std::tuple{"sparse", &ys, &ref_slide}}) {
      const auto st = error_stats(out->y_float, ref->y);
      EXPECT_EQ(st.nan, 0) << name;
      EXPECT_LE(st.rel, rel_tol) << name << " relative error";
      EXPECT_LE(st.max_abs, abs_tol * st.max_ref) << name << " max abs error";
    }
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (DType d : {DType::kI8, DType::kFP8E4M3, DType::kBF16})
    for (int block : {4, 6, 8, 10, 12})
      for (int shape = 0; shape < 3; ++shape) cases.push_back({d, block, shape});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllPrecisions, LinearVsReference, testing::ValuesIn(all_cases()),
                         case_name);

class LinearLayerTest : public testing::Test {
 protected:
  void SetUp() override { SS_SKIP_WITHOUT_GPU(); }
};

TEST_F(LinearLayerTest, WeightThatIsNotZLIsAPatternError) {
  std::mt19937 rng(5);
  const int64_t n = 64, k = 96;
  const auto w = test::random_normal(n * k, rng);  // dense: breaks every 2:L pattern
  const HostWeight hw{DType::kF32, w.data(), n, k};
  EXPECT_THROW(SlideSparseLinear(hw, Sparsity::parse("2:8"), {}, LinearOptions{}), PatternError);
}

TEST_F(LinearLayerTest, SlidCodesThatAreNot24AreAPatternError) {
  std::mt19937 rng(6);
  const int64_t n = 64, k = 96;
  const Sparsity sp = Sparsity::parse("2:8");
  const int64_t k_slide = sp.k_slide(k);
  std::vector<int8_t> codes(n * k_slide, 3);  // all non-zero: no group of 4 is 2:4
  const std::vector<float> scales(n, 0.01f);
  HostWeight hw{DType::kI8, codes.data(), n, k, /*slid=*/true, scales};
  EXPECT_THROW(SlideSparseLinear(hw, sp, {}, LinearOptions{}), PatternError);
}

TEST_F(LinearLayerTest, SlidCodesGiveTheSameLayerAsTheFloatWeight) {
  std::mt19937 rng(7);
  const int64_t m = 40, n = 96, k = 250;
  const Sparsity sp = Sparsity::parse("2:6");
  auto w = test::random_normal(n * k, rng, 0.1f);
  prune_magnitude<float>(w, n, k, sp);
  const auto q = quantize_rows_int8(w, n, k);
  const auto slid = slide_weights<int8_t>(q.codes, n, k, sp);
  const auto x = to_bf16_vector(test::random_normal(m * k, rng));
  const DeviceBuffer dx = to_device(x);
  SlideSparseLinear from_float(HostWeight{DType::kF32, w.data(), n, k}, sp, {}, LinearOptions{});
  SlideSparseLinear from_codes(HostWeight{DType::kI8, slid.data(), n, k, true, q.scales}, sp, {},
                               LinearOptions{});
  EXPECT_TRUE(bits_equal(run_layer(from_float, dx, m).y, run_layer(from_codes, dx, m).y));
}

TEST_F(LinearLayerTest, StagesOneByOneEqualForwardAndReportTheAlgorithm) {
  std::mt19937 rng(8);
  const int64_t m = 300, n = 128, k = 512;
  const Sparsity sp = Sparsity::parse("2:8");
  auto w = test::random_normal(n * k, rng, 0.1f);
  prune_magnitude<float>(w, n, k, sp);
  const auto bias = test::random_normal(n, rng);
  const auto x = to_bf16_vector(test::random_normal(m * k, rng));
  const DeviceBuffer dx = to_device(x);
  LinearOptions options{DType::kI8, Epilogue::kFused, false, std::nullopt};
  GemmAlgorithm forced;
  forced.is_default = false;
  forced.alg_config_id = 0;
  options.algorithm = forced;
  SlideSparseLinear layer(HostWeight{DType::kF32, w.data(), n, k}, sp, bias, options);
  const auto whole = run_layer(layer, dx, m);
  DeviceBuffer y = poisoned(m * n * 2);
  const DeviceBuffer scratch = scratch_for(layer, m);
  const LinearOutput out{y.get()};
  layer.quantize(nullptr, dx.get(), m, view(scratch));
  layer.gemm(nullptr, dx.get(), m, out, view(scratch));
  layer.dequant(nullptr, m, out, view(scratch));
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(bits_equal(to_host<bf16_t>(y.get(), m * n), whole.y));
  const GemmChoice choice = layer.gemm_choice(m);
  EXPECT_TRUE(choice.forced);
  EXPECT_FALSE(choice.algorithm.is_default);
  EXPECT_EQ(choice.algorithm.alg_config_id, 0);
  EXPECT_EQ(layer.gemm_m(m), 320);
  EXPECT_EQ(layer.padded_m(m), 320);
  EXPECT_EQ(layer.gemm_k(), sp.k_slide(k));
}

TEST_F(LinearLayerTest, NoAllocationOnceWarmedUp) {
  std::mt19937 rng(9);
  const int64_t n = 256, k = 256;
  const auto w = test::random_normal(n * k, rng);
  Linear layer(HostWeight{DType::kF32, w.data(), n, k}, {}, LinearOptions{});
  const int64_t buckets[] = {1, 77, 512, 4096};
  layer.prepare(buckets);
  const size_t bytes = layer.device_bytes();
  const size_t plans = gemm_plan_cache_size();
  const auto x = to_bf16_vector(test::random_normal(4096 * k, rng));
  const DeviceBuffer dx = to_device(x);
  DeviceBuffer y = poisoned(4096 * n * 2);
  const DeviceBuffer scratch = scratch_for(layer, 4096);
  size_t free_before = 0, free_after = 0, total = 0;
  // One pass first: the driver loads kernel modules lazily on first launch (not the layer's doing).
  for (int64_t m : {1, 77, 4096, 512, 300, 2})
    layer.forward(nullptr, dx.get(), m, LinearOutput{y.get()}, view(scratch));
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  SS_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
  for (int64_t m : {1, 77, 4096, 512, 300, 2})
    layer.forward(nullptr, dx.get(), m, LinearOutput{y.get()}, view(scratch));
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  SS_CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
  EXPECT_EQ(layer.device_bytes(), bytes);
  EXPECT_EQ(gemm_plan_cache_size(), plans) << "forward made a GEMM plan";
  EXPECT_EQ(free_after, free_before) << "forward allocated device memory";
}

TEST_F(LinearLayerTest, BadInputsAreClearErrors) {
  const int64_t n = 32, k = 64;
  std::vector<float> w(n * k, 0.5f);
  const std::vector<float> short_bias(n - 1, 0.0f);
  const HostWeight hw{DType::kF32, w.data(), n, k};
  EXPECT_THROW(Linear(hw, short_bias, LinearOptions{}), Error);
  std::vector<int8_t> codes(n * k, 1);
  const std::vector<float> scales(n, 1.0f);
  // int8 codes for an FP8 layer
  EXPECT_THROW(Linear(HostWeight{DType::kI8, codes.data(), n, k, false, scales}, {},
                      LinearOptions{DType::kFP8E4M3}),
               Error);
  // codes without scales
  EXPECT_THROW(Linear(HostWeight{DType::kI8, codes.data(), n, k}, {}, LinearOptions{}), Error);
  Linear ok(hw, {}, LinearOptions{});
  ok.prepare(4);
  EXPECT_THROW(ok.forward(nullptr, nullptr, 4, LinearOutput{}, LinearScratch{}), Error);
  EXPECT_THROW(ok.prepare(0), Error);
  // A scratch smaller than workspace_bytes() is refused before anything is launched.
  DeviceBuffer x(4 * k * 2), y(4 * n * 2);
  const DeviceBuffer small(ok.workspace_bytes(4) / 2);
  EXPECT_THROW(ok.forward(nullptr, x.get(), 4, LinearOutput{y.get()}, view(small)), Error);
}

}  // namespace
}  // namespace slidesparse
