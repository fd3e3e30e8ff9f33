// The layer API a model runtime builds on: M buckets (an M runs at the smallest prepared bucket,
// padding rows zero; an M above them is an Error), caller-owned scratch, a CUDA-graph capture of
// several layers replayed bit for bit, the quantised-input entry point fed by launch_quant /
// launch_quant_slide, the residual epilogue against the CPU reference, FP8 fast accumulation,
// and layers built from device-resident weights equal to layers built from host weights.
// Stated tolerances:
//   INT8: bit for bit against the CPU reference (accumulation is exact, dequant bit-equal).
//   FP8 default accumulation: ||y - ref|| / ||ref|| <= 4e-3, max |y - ref| <= 1e-2 max |ref|.
//   FP8 fast accumulation (K = 4096): ||y - ref|| / ||ref|| <= 1e-2, max |y - ref| <= 4e-2
//        max |ref|; both errors are printed.
//   BF16: ||y - ref|| / ||ref|| <= 8e-3.
// Scratch and outputs are poisoned (0xFF) before every run.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "kernels/quant.h"
#include "layer/layer_test_util.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/linear_ref.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"
#include "slidesparse/layer/linear.h"

namespace slidesparse {
namespace {

using test::bf16_to_float;
using test::error_stats;
using test::poisoned;
using test::scratch_for;
using test::to_device;
using test::to_host;
using test::view;

bool fp8_here() { return test::fp8_available(); }

bool bits_equal(const std::vector<bf16_t>& a, const std::vector<bf16_t>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(bf16_t)) == 0;
}

// A float weight [n, k], pruned to `sparsity` when given.
std::vector<float> make_weight(int64_t n, int64_t k, std::optional<Sparsity> sparsity,
                               std::mt19937& rng) {
  auto w = test::random_normal(static_cast<size_t>(n * k), rng, 0.05f);
  if (sparsity) prune_magnitude<float>(w, n, k, *sparsity);
  return w;
}

std::unique_ptr<LinearLayer> make_layer(const HostWeight& hw, std::optional<Sparsity> sparsity,
                                        std::span<const float> bias, const LinearOptions& o) {
  if (sparsity) return std::make_unique<SlideSparseLinear>(hw, *sparsity, bias, o);
  return std::make_unique<Linear>(hw, bias, o);
}

std::vector<bf16_t> run_forward(const LinearLayer& layer, const DeviceBuffer& x, int64_t m,
                                const LinearScratch& scratch, const void* residual = nullptr) {
  DeviceBuffer y = poisoned(static_cast<size_t>(m * layer.n()) * 2);
  LinearOutput out{y.get()};
  out.residual = residual;
  layer.forward(nullptr, x.get(), m, out, scratch);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  return to_host<bf16_t>(y.get(), static_cast<size_t>(m * layer.n()));
}

// ---- buckets ----------------------------------------------------------------------------------

TEST(LinearBuckets, UnpreparedMIsAnErrorNamingTheLayerAndTheBuckets) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(11);
  const int64_t n = 64, k = 96;
  const auto w = make_weight(n, k, std::nullopt, rng);
  Linear layer(HostWeight{DType::kF32, w.data(), n, k}, {}, LinearOptions{});
  DeviceBuffer x(128 * k * 2), y(128 * n * 2), scratch(1 << 20);
  try {
    layer.forward(nullptr, x.get(), 1, LinearOutput{y.get()}, view(scratch));
    ADD_FAILURE() << "forward before prepare did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prepare"), std::string::npos) << e.what();
  }
  const int64_t buckets[] = {64, 16};
  layer.prepare(buckets);
  EXPECT_EQ(layer.prepared_buckets(), (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(layer.bucket(1), 16);
  EXPECT_EQ(layer.bucket(17), 64);
  EXPECT_EQ(layer.padded_m(17), 64);
  try {
    layer.forward(nullptr, x.get(), 65, LinearOutput{y.get()}, view(scratch));
    ADD_FAILURE() << "M above every bucket did not throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(layer.describe()), std::string::npos) << what;
    EXPECT_NE(what.find("16, 64"), std::string::npos) << what;
    EXPECT_NE(what.find("M=65"), std::string::npos) << what;
  }
  EXPECT_THROW(layer.workspace_bytes(65), Error);
  EXPECT_THROW(layer.gemm_choice(65), Error);
  EXPECT_LE(layer.workspace_bytes(16), layer.workspace_bytes(17));
}

// An M below its bucket runs at the bucket's padded M on a poisoned scratch: padding rows must be
// written as zeros (INT8: the result equals the exact bucket's and the reference bit for bit).
TEST(LinearBuckets, MBelowItsBucketEqualsTheExactBucket) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(12);
  const int64_t m = 17, n = 100, k = 250;
  for (std::optional<Sparsity> sp :
       {std::optional<Sparsity>{}, std::optional(Sparsity::parse("2:8"))}) {
    SCOPED_TRACE(sp ? sp->name() : "dense");
    const auto w = make_weight(n, k, Sparsity::parse("2:8"), rng);
    const auto bias = test::random_normal(n, rng, 0.5f);
    const auto x = to_bf16_vector(test::random_normal(m * k, rng));
    const DeviceBuffer dx = to_device(x);
    const HostWeight hw{DType::kF32, w.data(), n, k};
    const LinearOptions o{DType::kI8, Epilogue::kKernel, false, std::nullopt};
    auto exact = make_layer(hw, sp, bias, o);
    auto padded = make_layer(hw, sp, bias, o);
    exact->prepare(m);
    const int64_t buckets[] = {8, 200};
    padded->prepare(buckets);
    EXPECT_EQ(padded->bucket(m), 200);
    const DeviceBuffer s1 = scratch_for(*exact, m), s2 = scratch_for(*padded, m);
    const auto y_exact = run_forward(*exact, dx, m, view(s1));
    const auto y_padded = run_forward(*padded, dx, m, view(s2));
    EXPECT_TRUE(bits_equal(y_exact, y_padded));
    const LinearRefResult ref = linear_dense_ref(LinearRefProblem{x, w, bias, m, n, k, DType::kI8});
    EXPECT_TRUE(bits_equal(y_padded, ref.y_bf16)) << "bucket 200 vs the CPU reference";
  }
  // Dense BF16 with aligned K reads x itself at its bucket's M and stages it below.
  const int64_t kb = 256;
  const auto w = make_weight(n, kb, std::nullopt, rng);
  const auto x = to_bf16_vector(test::random_normal(m * kb, rng));
  const DeviceBuffer dx = to_device(x);
  Linear layer(HostWeight{DType::kF32, w.data(), n, kb}, {},
               LinearOptions{DType::kBF16, Epilogue::kKernel, false, std::nullopt});
  const int64_t buckets[] = {m, 64};
  layer.prepare(buckets);
  const LinearRefResult ref = linear_dense_ref(LinearRefProblem{x, w, {}, m, n, kb, DType::kBF16});
  const DeviceBuffer scratch = scratch_for(layer, 64);
  for (int64_t rows : {m, int64_t{5}}) {
    SCOPED_TRACE("bf16 M=" + std::to_string(rows));
    const auto y = run_forward(layer, dx, rows, view(scratch));
    const std::vector<float> want(ref.y.begin(), ref.y.begin() + rows * n);
    const auto st = error_stats(bf16_to_float(y), want);
    EXPECT_EQ(st.nan, 0);
    EXPECT_LE(st.rel, 8e-3);
  }
}

// ---- quantised input ----------------------------------------------------------------------------

TEST(LinearQuantizedInput, CodesFromTheQuantKernelsEqualForward) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(13);
  const int64_t m = 33, n = 96, k = 998;
  const auto x = to_bf16_vector(test::random_normal(m * k, rng));
  const DeviceBuffer dx = to_device(x);
  for (DType compute : {DType::kI8, DType::kFP8E4M3, DType::kBF16}) {
    if (compute == DType::kFP8E4M3 && !fp8_here()) continue;
    for (std::optional<Sparsity> sp :
         {std::optional<Sparsity>{}, std::optional(Sparsity::parse("2:4")),
          std::optional(Sparsity::parse("2:10"))}) {
      if (compute == DType::kBF16 && !sp) continue;  // dense BF16 has no quantised input form
      SCOPED_TRACE(std::string(dtype_name(compute)) + " " + (sp ? sp->name() : "dense"));
      const auto w = make_weight(n, k, sp ? *sp : Sparsity::parse("2:10"), rng);
      const auto bias = test::random_normal(n, rng, 0.5f);
      auto layer = make_layer(HostWeight{DType::kF32, w.data(), n, k}, sp, bias,
                              LinearOptions{compute, Epilogue::kKernel, false, std::nullopt});
      layer->prepare(m);
      const DeviceBuffer scratch = scratch_for(*layer, m);
      const auto y_forward = run_forward(*layer, dx, m, view(scratch));

      const int64_t m_pad = layer->padded_m(m);
      DeviceBuffer codes = poisoned(static_cast<size_t>(m_pad * layer->gemm_k()) *
                                    static_cast<size_t>(dtype_size(compute)));
      DeviceBuffer scales = poisoned(static_cast<size_t>(m_pad) * sizeof(float));
      if (compute == DType::kBF16)
        launch_slide(dx.get(), DType::kBF16, m, k, k, *sp, codes.get(), m_pad, nullptr);
      else if (sp)
        launch_quant_slide(dx.get(), DType::kBF16, m, k, k, *sp, compute, codes.get(), m_pad,
                           scales.as<float>(), nullptr);
      else
        launch_quant(dx.get(), DType::kBF16, m, k, k, compute, codes.get(), m_pad, layer->gemm_k(),
                     scales.as<float>(), nullptr);
      const DeviceBuffer scratch2 = scratch_for(*layer, m);
      DeviceBuffer y = poisoned(static_cast<size_t>(m * n) * 2);
      const QuantizedActivations qa{codes.get(),
                                    compute == DType::kBF16 ? nullptr : scales.as<float>()};
      layer->forward_quantized(nullptr, qa, m, LinearOutput{y.get()}, view(scratch2));
      SS_CUDA_CHECK(cudaDeviceSynchronize());
      EXPECT_TRUE(bits_equal(to_host<bf16_t>(y.get(), m * n), y_forward));
    }
  }
}

// ---- residual epilogue --------------------------------------------------------------------------

TEST(LinearResidual, Int8ResidualEpilogueMatchesReferenceBitForBit) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(14);
  struct Shape {
    int64_t m, n, k;
  };
  for (const Shape& shape : {Shape{1, 100, 998}, Shape{17, 72, 134}, Shape{1025, 96, 256}}) {
    const int64_t m = shape.m, n = shape.n, k = shape.k;
    for (std::optional<Sparsity> sp :
         {std::optional<Sparsity>{}, std::optional(Sparsity::parse("2:8"))}) {
      SCOPED_TRACE("M=" + std::to_string(m) + " N=" + std::to_string(n) +
                   " K=" + std::to_string(k) + " " + (sp ? sp->name() : "dense"));
      const auto w = make_weight(n, k, Sparsity::parse("2:8"), rng);
      const auto bias = test::random_normal(n, rng, 0.5f);
      const auto x = to_bf16_vector(test::random_normal(m * k, rng));
      const auto residual = to_bf16_vector(test::random_normal(m * n, rng, 3.0f));
      const LinearRefResult ref =
          linear_dense_ref(LinearRefProblem{x, w, bias, m, n, k, DType::kI8});
      const auto want = to_bf16_vector(dequant_residual_unrounded_ref(std::span<const int32_t>(ref.acc_int32),
                                                            m, n, ref.scale_per_token,
                                                            ref.scale_per_channel, bias, residual));
      auto layer = make_layer(HostWeight{DType::kF32, w.data(), n, k}, sp, bias,
                              LinearOptions{DType::kI8, Epilogue::kKernel, false, std::nullopt});
      layer->prepare(m);
      const DeviceBuffer scratch = scratch_for(*layer, m);
      const DeviceBuffer dx = to_device(x);
      const DeviceBuffer d_res = to_device(residual);
      EXPECT_TRUE(bits_equal(run_forward(*layer, dx, m, view(scratch), d_res.get()), want))
          << "separate residual";
      // In place: the residual stream is y itself (h = h + layer(x)).
      DeviceBuffer h = to_device(residual);
      LinearOutput out{h.get()};
      out.residual = h.get();
      layer->forward(nullptr, dx.get(), m, out, view(scratch));
      SS_CUDA_CHECK(cudaDeviceSynchronize());
      EXPECT_TRUE(bits_equal(to_host<bf16_t>(h.get(), m * n), want)) << "residual in place";
    }
  }
}

// The library-epilogue paths (fused) add the residual in the dequant kernel after the library's
// bf16 output: within one extra bf16 rounding of the reference.
TEST(LinearResidual, FusedEpilogueAddsTheResidualToo) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(15);
  const int64_t m = 40, n = 96, k = 256;
  const auto w = make_weight(n, k, Sparsity::parse("2:6"), rng);
  const auto bias = test::random_normal(n, rng, 0.5f);
  const auto x = to_bf16_vector(test::random_normal(m * k, rng));
  const auto residual = to_bf16_vector(test::random_normal(m * n, rng, 3.0f));
  const DeviceBuffer dx = to_device(x), d_res = to_device(residual);
  for (std::optional<Sparsity> sp :
       {std::optional<Sparsity>{}, std::optional(Sparsity::parse("2:6"))}) {
    SCOPED_TRACE(sp ? sp->name() : "dense");
    auto layer = make_layer(HostWeight{DType::kF32, w.data(), n, k}, sp, bias,
                            LinearOptions{DType::kBF16, Epilogue::kFused, false, std::nullopt});
    layer->prepare(m);
    EXPECT_NE(layer->epilogue_note().find("residual"), std::string::npos) << layer->epilogue_note();
    const DeviceBuffer scratch = scratch_for(*layer, m);
    const auto plain = bf16_to_float(run_forward(*layer, dx, m, view(scratch)));
    const auto with = bf16_to_float(run_forward(*layer, dx, m, view(scratch), d_res.get()));
    int64_t bad = 0;
    for (size_t i = 0; i < with.size(); ++i) {
      const float want = to_float(bf16_from_float(to_float(residual[i]) + plain[i]));
      bad += with[i] == want ? 0 : 1;
    }
    EXPECT_EQ(bad, 0) << "y = bf16(residual + bf16(layer(x)))";
  }
}

// ---- FP8 fast accumulation ----------------------------------------------------------------------

TEST(LinearFastAccum, Fp8WithinStatedErrorAndReportsItsCost) {
  SS_SKIP_WITHOUT_GPU();
  SS_SKIP_WITHOUT_FP8();
  std::mt19937 rng(16);
  const int64_t m = 64, n = 256, k = 4096;
  const auto w = make_weight(n, k, std::nullopt, rng);
  const auto x = to_bf16_vector(test::random_normal(m * k, rng));
  const DeviceBuffer dx = to_device(x);
  const LinearRefResult ref =
      linear_dense_ref(LinearRefProblem{x, w, {}, m, n, k, DType::kFP8E4M3});
  const HostWeight hw{DType::kF32, w.data(), n, k};
  LinearOptions o{DType::kFP8E4M3, Epilogue::kKernel, false, std::nullopt};
  Linear plain(hw, {}, o);
  o.fast_accum = true;
  Linear fast(hw, {}, o);
  EXPECT_FALSE(plain.fast_accum());
  EXPECT_TRUE(fast.fast_accum());
  EXPECT_NE(fast.describe().find("fast-accum"), std::string::npos);
  plain.prepare(m);
  fast.prepare(m);
  const DeviceBuffer scratch = scratch_for(fast, m);
  const auto e_plain = error_stats(bf16_to_float(run_forward(plain, dx, m, view(scratch))), ref.y);
  const auto e_fast = error_stats(bf16_to_float(run_forward(fast, dx, m, view(scratch))), ref.y);
  std::printf(
      "FP8 M=%lld N=%lld K=%lld vs CPU reference: default accumulation rel %.3e max_abs/max_ref "
      "%.3e; fast accumulation rel %.3e max_abs/max_ref %.3e\n",
      static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k), e_plain.rel,
      e_plain.max_abs / e_plain.max_ref, e_fast.rel, e_fast.max_abs / e_fast.max_ref);
  EXPECT_EQ(e_plain.nan, 0);
  EXPECT_EQ(e_fast.nan, 0);
  EXPECT_LE(e_plain.rel, 4e-3);
  EXPECT_LE(e_plain.max_abs, 1e-2 * e_plain.max_ref);
  EXPECT_LE(e_fast.rel, 1e-2);
  EXPECT_LE(e_fast.max_abs, 4e-2 * e_fast.max_ref);
  // Not an option of the other dtypes or of SlideSparse: not in effect there.
  LinearOptions o8{DType::kI8, Epilogue::kKernel, false, std::nullopt};
  o8.fast_accum = true;
  EXPECT_FALSE(Linear(hw, {}, o8).fast_accum());
}

// ---- device-resident weights --------------------------------------------------------------------

TEST(LinearDeviceWeight, EqualsTheHostWeightLayerBitForBit) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(17);
  const int64_t m = 33, n = 72, k = 134;
  const auto x = to_bf16_vector(test::random_normal(m * k, rng));
  const DeviceBuffer dx = to_device(x);
  for (DType compute : {DType::kI8, DType::kFP8E4M3, DType::kBF16}) {
    if (compute == DType::kFP8E4M3 && !fp8_here()) continue;
    for (std::optional<Sparsity> sp :
         {std::optional<Sparsity>{}, std::optional(Sparsity::parse("2:4")),
          std::optional(Sparsity::parse("2:8")), std::optional(Sparsity::parse("2:10"))}) {
      SCOPED_TRACE(std::string(dtype_name(compute)) + " " + (sp ? sp->name() : "dense"));
      const auto w = make_weight(n, k, sp, rng);
      const auto bias = test::random_normal(n, rng, 0.5f);
      const auto w16 = to_bf16_vector(w);
      const DeviceBuffer d_w32 = to_device(w), d_w16 = to_device(w16), d_bias = to_device(bias);
      const LinearOptions o{compute, Epilogue::kKernel, false, std::nullopt};
      auto device_layer = [&](const DeviceWeight& dw) -> std::unique_ptr<LinearLayer> {
        if (sp) return std::make_unique<SlideSparseLinear>(dw, *sp, d_bias.as<float>(), o);
        return std::make_unique<Linear>(dw, d_bias.as<float>(), o);
      };
      auto y_of = [&](LinearLayer& layer) {
        layer.prepare(m);
        const DeviceBuffer scratch = scratch_for(layer, m);
        return run_forward(layer, dx, m, view(scratch));
      };
      // From bf16 values (and f32 for 8-bit layers).
      auto host16 = make_layer(HostWeight{DType::kBF16, w16.data(), n, k}, sp, bias, o);
      auto dev16 = device_layer(DeviceWeight{DType::kBF16, d_w16.get(), n, k});
      const auto y_host16 = y_of(*host16);
      EXPECT_TRUE(bits_equal(y_of(*dev16), y_host16)) << "bf16 values";
      if (compute == DType::kBF16) continue;
      auto host32 = make_layer(HostWeight{DType::kF32, w.data(), n, k}, sp, bias, o);
      auto dev32 = device_layer(DeviceWeight{DType::kF32, d_w32.get(), n, k});
      EXPECT_TRUE(bits_equal(y_of(*dev32), y_of(*host32))) << "f32 values";
      // From codes with scales, and (SlideSparse) from slid codes.
      std::vector<uint8_t> codes, slid;
      std::vector<float> scales;
      if (compute == DType::kI8) {
        auto q = quantize_rows_int8(w, n, k);
        codes.assign(reinterpret_cast<const uint8_t*>(q.codes.data()),
                     reinterpret_cast<const uint8_t*>(q.codes.data()) + q.codes.size());
        scales = q.scales;
        if (sp) {
          const auto s = slide_weights<int8_t>(q.codes, n, k, *sp);
          slid.assign(reinterpret_cast<const uint8_t*>(s.data()),
                      reinterpret_cast<const uint8_t*>(s.data()) + s.size());
        }
      } else {
        auto q = quantize_rows_e4m3(w, n, k);
        codes.assign(reinterpret_cast<const uint8_t*>(q.codes.data()),
                     reinterpret_cast<const uint8_t*>(q.codes.data()) + q.codes.size());
        scales = q.scales;
        if (sp) {
          const auto s = slide_weights<fp8_e4m3_t>(q.codes, n, k, *sp);
          slid.assign(reinterpret_cast<const uint8_t*>(s.data()),
                      reinterpret_cast<const uint8_t*>(s.data()) + s.size());
        }
      }
      const DeviceBuffer d_codes = to_device(codes), d_scales = to_device(scales);
      auto host_codes =
          make_layer(HostWeight{compute, codes.data(), n, k, false, scales}, sp, bias, o);
      auto dev_codes =
          device_layer(DeviceWeight{compute, d_codes.get(), n, k, false, d_scales.as<float>()});
      const auto y_codes = y_of(*host_codes);
      EXPECT_TRUE(bits_equal(y_of(*dev_codes), y_codes)) << "codes";
      if (sp) {
        const DeviceBuffer d_slid = to_device(slid);
        auto dev_slid =
            device_layer(DeviceWeight{compute, d_slid.get(), n, k, true, d_scales.as<float>()});
        EXPECT_TRUE(bits_equal(y_of(*dev_slid), y_codes)) << "slid codes";
      }
    }
  }
}

TEST(LinearDeviceWeight, WeightThatIsNotZLIsAPatternError) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(18);
  const int64_t n = 64, k = 96;
  const auto w = to_bf16_vector(test::random_normal(n * k, rng));  // dense: breaks 2:8
  const DeviceBuffer d = to_device(w);
  EXPECT_THROW(SlideSparseLinear(DeviceWeight{DType::kBF16, d.get(), n, k}, Sparsity::parse("2:8"),
                                 nullptr, LinearOptions{}),
               PatternError);
  // Codes without scales, and f32 values for a BF16 layer, are clear errors.
  EXPECT_THROW(Linear(DeviceWeight{DType::kI8, d.get(), n, k}, nullptr, LinearOptions{}), Error);
  EXPECT_THROW(
      Linear(DeviceWeight{DType::kF32, d.get(), n, k / 2}, nullptr, LinearOptions{DType::kBF16}),
      Error);
}

// ---- CUDA graph ---------------------------------------------------------------------------------

// Several layers (dtypes, patterns, epilogues; one with a residual, one fed by launch_quant_slide
// inside the graph) on one shared scratch arena: captured once, replayed twice, equal to the
// eager run bit for bit.
TEST(LinearGraph, CapturedSequenceReplaysBitForBit) {
  SS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(19);
  struct Spec {
    DType compute;
    std::optional<Sparsity> sparsity;
    Epilogue epilogue;
    int64_t n, k;
    bool residual, quantized_input;
  };
  std::vector<Spec> specs = {
      {DType::kI8, std::nullopt, Epilogue::kKernel, 96, 134, false, false},
      {DType::kI8, Sparsity::parse("2:8"), Epilogue::kKernel, 100, 250, true, false},
      {DType::kI8, Sparsity::parse("2:4"), Epilogue::kFused, 64, 256, false, true},
      {DType::kBF16, Sparsity::parse("2:6"), Epilogue::kFused, 64, 998, false, false},
      {DType::kBF16, std::nullopt, Epilogue::kFused, 72, 134, true, false},
  };
  if (fp8_here()) {
    specs.push_back({DType::kFP8E4M3, std::nullopt, Epilogue::kFused, 128, 512, false, false});
    specs.push_back(
        {DType::kFP8E4M3, Sparsity::parse("2:10"), Epilogue::kKernel, 96, 300, false, true});
  }
  const int64_t m = 33;  // runs at bucket 64
  const int64_t buckets[] = {16, 64};
  struct Live {
    std::unique_ptr<LinearLayer> layer;
    DeviceBuffer x, residual, y, codes, scales;
    Spec spec;
  };
  std::vector<Live> live;
  size_t arena_bytes = 0;
  for (const Spec& s : specs) {
    Live l;
    l.spec = s;
    const auto w = make_weight(s.n, s.k, s.sparsity ? *s.sparsity : Sparsity::parse("2:10"), rng);
    const auto bias = test::random_normal(s.n, rng, 0.5f);
    l.layer = make_layer(HostWeight{DType::kF32, w.data(), s.n, s.k}, s.sparsity, bias,
                         LinearOptions{s.compute, s.epilogue, false, std::nullopt});
    l.layer->prepare(buckets);
    arena_bytes = std::max(arena_bytes, l.layer->workspace_bytes(m));
    l.x = to_device(to_bf16_vector(test::random_normal(m * s.k, rng)));
    l.residual = to_device(to_bf16_vector(test::random_normal(m * s.n, rng)));
    l.y = poisoned(static_cast<size_t>(m * s.n) * 2);
    const int64_t m_pad = l.layer->padded_m(m);
    l.codes = DeviceBuffer(static_cast<size_t>(m_pad * l.layer->gemm_k()));
    l.scales = DeviceBuffer(static_cast<size_t>(m_pad) * sizeof(float));
    live.push_back(std::move(l));
  }
  const DeviceBuffer arena = test::poisoned_scratch(arena_bytes);
  CudaStream stream;
  auto enqueue = [&] {
    for (Live& l : live) {
      LinearOutput out{l.y.get()};
      if (l.spec.residual) out.residual = l.residual.get();
      if (l.spec.quantized_input) {
        const int64_t m_pad = l.layer->padded_m(m);
        if (l.spec.sparsity)
          launch_quant_slide(l.x.get(), DType::kBF16, m, l.spec.k, l.spec.k, *l.spec.sparsity,
                             l.spec.compute, l.codes.get(), m_pad, l.scales.as<float>(),
                             stream.get());
        else
          launch_quant(l.x.get(), DType::kBF16, m, l.spec.k, l.spec.k, l.spec.compute,
                       l.codes.get(), m_pad, l.layer->gemm_k(), l.scales.as<float>(), stream.get());
        l.layer->forward_quantized(stream.get(),
                                   QuantizedActivations{l.codes.get(), l.scales.as<float>()}, m,
                                   out, view(arena));
      } else {
        l.layer->forward(stream.get(), l.x.get(), m, out, view(arena));
      }
    }
  };
  enqueue();
  SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  std::vector<std::vector<bf16_t>> eager;
  for (const Live& l : live)
    eager.push_back(to_host<bf16_t>(l.y.get(), static_cast<size_t>(m * l.spec.n)));

  cudaGraph_t graph = nullptr;
  SS_CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
  try {
    enqueue();
  } catch (...) {
    cudaStreamEndCapture(stream.get(), &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  SS_CUDA_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  cudaGraphExec_t exec = nullptr;
  SS_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 2; ++replay) {
    SCOPED_TRACE("replay " + std::to_string(replay));
    for (Live& l : live) SS_CUDA_CHECK(cudaMemsetAsync(l.y.get(), 0xFF, l.y.bytes(), stream.get()));
    SS_CUDA_CHECK(cudaMemsetAsync(arena.get(), 0xFF, arena.bytes(), stream.get()));
    SS_CUDA_CHECK(cudaGraphLaunch(exec, stream.get()));
    SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    for (size_t i = 0; i < live.size(); ++i) {
      SCOPED_TRACE(live[i].layer->describe());
      EXPECT_TRUE(bits_equal(
          to_host<bf16_t>(live[i].y.get(), static_cast<size_t>(m * live[i].spec.n)), eager[i]));
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

}  // namespace
}  // namespace slidesparse
