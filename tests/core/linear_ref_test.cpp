// Reference linear layer: dense and SlideSparse paths agree (INT8 accumulators bit for bit, FP8
// and BF16 to rounding) for every L in 4..16, both approximate the float product, bad input throws.
#include "slidesparse/core/linear_ref.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/random_data.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

struct LayerData {
  std::vector<bf16_t> x;
  std::vector<float> weight;
  std::vector<float> bias;
  LinearRefProblem problem(const test::Shape& s, DType compute) const {
    return LinearRefProblem{x, weight, bias, s.m, s.n, s.k, compute};
  }
};

LayerData make_layer(const test::Shape& s, Sparsity sp, uint64_t seed) {
  LayerData d;
  d.x = test::random_bf16(s.m * s.k, seed);
  d.weight = test::random_floats(s.n * s.k, seed + 1, 0.05f);
  prune_magnitude<float>(d.weight, s.n, s.k, sp);
  d.bias = test::random_floats(s.n, seed + 2, 0.1f);
  return d;
}

// Largest |a - b| relative to the largest |b| (the float outputs of the two paths).
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

TEST(LinearRef, Int8AccumulatorsAreBitIdenticalForEveryBlock) {
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& shape : test::test_shapes()) {
      SCOPED_TRACE(sp.name() + " K " + std::to_string(shape.k));
      const LayerData d = make_layer(shape, sp, 1000 + block * 31 + shape.k);
      const auto p = d.problem(shape, DType::kI8);
      const auto dense = linear_dense_ref(p);
      const auto slide = linear_slide_ref(p, sp);
      ASSERT_EQ(static_cast<int64_t>(dense.acc_int32.size()), shape.m * shape.n);
      EXPECT_EQ(slide.acc_int32, dense.acc_int32);
      EXPECT_EQ(slide.scale_per_token, dense.scale_per_token);
      EXPECT_EQ(slide.scale_per_channel, dense.scale_per_channel);
      EXPECT_EQ(slide.y, dense.y);
      EXPECT_EQ(slide.y_bf16, dense.y_bf16);
      EXPECT_TRUE(dense.acc_float.empty());
    }
  }
}

TEST(LinearRef, Fp8AndBf16AgreeToRounding) {
  for (int block : test::test_blocks()) {
    const Sparsity sp = Sparsity::from_block(block);
    for (const auto& shape : test::test_shapes()) {
      SCOPED_TRACE(sp.name() + " K " + std::to_string(shape.k));
      const LayerData d = make_layer(shape, sp, 2000 + block * 31 + shape.k);
      for (DType compute : {DType::kFP8E4M3, DType::kBF16}) {
        const auto p = d.problem(shape, compute);
        const auto dense = linear_dense_ref(p);
        const auto slide = linear_slide_ref(p, sp);
        ASSERT_EQ(dense.acc_float.size(), slide.acc_float.size());
        EXPECT_LE(max_rel_diff(slide.acc_float, dense.acc_float), 1e-6) << dtype_name(compute);
        EXPECT_LE(max_rel_diff(slide.y, dense.y), 1e-6) << dtype_name(compute);
        EXPECT_TRUE(dense.acc_int32.empty());
        if (compute == DType::kBF16) {
          EXPECT_TRUE(dense.scale_per_token.empty());
          EXPECT_TRUE(dense.scale_per_channel.empty());
        }
      }
    }
  }
}

TEST(LinearRef, ApproximatesTheFloatLayer) {
  const test::Shape shape{8, 24, 512};
  const Sparsity sp = Sparsity::from_block(8);
  const LayerData d = make_layer(shape, sp, 77);
  std::vector<double> exact(shape.m * shape.n);
  double scale = 0.0;
  for (int64_t i = 0; i < shape.m; ++i) {
    for (int64_t j = 0; j < shape.n; ++j) {
      double s = d.bias[j];
      for (int64_t c = 0; c < shape.k; ++c)
        s += double(to_float(d.x[i * shape.k + c])) * d.weight[j * shape.k + c];
      exact[i * shape.n + j] = s;
      scale = std::max(scale, std::fabs(s));
    }
  }
  // Expected relative errors: INT8 about 1%, FP8 a few %, BF16 well below 1%.
  const std::vector<std::pair<DType, double>> tolerances = {
      {DType::kI8, 0.03}, {DType::kFP8E4M3, 0.08}, {DType::kBF16, 0.01}};
  for (const auto& [compute, tolerance] : tolerances) {
    const auto r = linear_slide_ref(d.problem(shape, compute), sp);
    double err = 0.0;
    for (size_t i = 0; i < exact.size(); ++i) {
      err = std::max(err, std::fabs(r.y[i] - exact[i]));
      EXPECT_EQ(r.y_bf16[i], bf16_from_float(r.y[i]));
    }
    EXPECT_LE(err / scale, tolerance) << dtype_name(compute);
  }
}

TEST(LinearRef, ZeroActivationRowGivesTheBias) {
  const test::Shape shape{2, 5, 40};
  const Sparsity sp = Sparsity::from_block(10);
  LayerData d = make_layer(shape, sp, 9);
  for (int64_t c = 0; c < shape.k; ++c) d.x[c] = bf16_t{};  // row 0 all zeros
  for (DType compute : {DType::kI8, DType::kFP8E4M3}) {
    const auto r = linear_slide_ref(d.problem(shape, compute), sp);
    EXPECT_EQ(r.scale_per_token[0], kMinAbsMax / quant_max(compute));
    for (int64_t j = 0; j < shape.n; ++j) EXPECT_EQ(r.y[j], d.bias[j]) << dtype_name(compute);
  }
}

TEST(LinearRef, NoBiasMeansNoBias) {
  const test::Shape shape{3, 4, 16};
  const Sparsity sp = Sparsity::from_block(4);
  LayerData d = make_layer(shape, sp, 12);
  d.bias.clear();
  const auto r = linear_dense_ref(d.problem(shape, DType::kBF16));
  EXPECT_EQ(r.y, r.acc_float);
}

TEST(LinearRef, BadInputThrows) {
  const test::Shape shape{2, 3, 16};
  const Sparsity sp = Sparsity::from_block(8);
  LayerData d = make_layer(shape, sp, 3);
  auto p = d.problem(shape, DType::kI8);
  p.k = 15;
  EXPECT_THROW(linear_dense_ref(p), Error);
  p = d.problem(shape, DType::kI8);
  p.m = 0;
  EXPECT_THROW(linear_slide_ref(p, sp), Error);
  p = d.problem(shape, DType::kI8);
  p.bias = std::span<const float>(d.bias).first(2);
  try {
    linear_dense_ref(p);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("linear_dense_ref"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bias"), std::string::npos) << msg;
  }
  p = d.problem(shape, DType::kF32);
  EXPECT_THROW(linear_dense_ref(p), NotSupportedError);
  EXPECT_THROW(linear_dense_ref(LinearRefProblem{}), Error);
  // A weight that is dense cannot take the SlideSparse path.
  const auto dense_w = test::random_floats(shape.n * shape.k, 4);
  p = d.problem(shape, DType::kI8);
  p.weight = dense_w;
  try {
    linear_slide_ref(p, sp);
    FAIL() << "expected PatternError";
  } catch (const PatternError& e) {
    EXPECT_EQ(e.row(), 0);
    EXPECT_EQ(e.block(), 0);
    EXPECT_NE(std::string(e.what()).find("linear_slide_ref"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slidesparse
