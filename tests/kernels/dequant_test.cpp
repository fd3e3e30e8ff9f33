// GPU dequant against core/gemm_ref.h dequant_ref, bit for bit on fresh random data: int32, fp32
// and bf16 accumulators, every combination of absent scales / bias, odd shapes and strides
// (the stride padding of y must stay untouched), launch configs, bad arguments; and with a bf16
// residual (separate, or y itself) against dequant_residual_ref, bit for bit.
#include "kernels/dequant.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/kernel_test_util.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using test::GuardedBuffer;

struct Case {
  DType acc_dtype = DType::kI32;
  int64_t m = 1, n = 1, ld_acc = 1, ld_y = 1;
  bool has_token_scale = true, has_channel_scale = true, has_bias = true;
  KernelLaunchConfig config{};
  // Residual: none, a separate [m, ld_residual] buffer, or y itself (ld_residual = ld_y).
  enum class Residual { kNone, kSeparate, kInPlace } residual = Residual::kNone;
  int64_t ld_residual = 0;
};

void run_case(const Case& c) {
  const uint64_t seed = test::fresh_seed();
  std::ostringstream what;
  what << "dequant acc=" << dtype_name(c.acc_dtype) << " m=" << c.m << " n=" << c.n
       << " ld_acc=" << c.ld_acc << " ld_y=" << c.ld_y << " token=" << c.has_token_scale
       << " channel=" << c.has_channel_scale << " bias=" << c.has_bias << " config={"
       << c.config.block_threads << "," << c.config.rows_per_block
       << "} residual=" << static_cast<int>(c.residual) << " ld_residual=" << c.ld_residual
       << " seed=" << seed;
  SCOPED_TRACE(what.str());
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Wide int32 range so the int -> float conversion has to round (|acc| up to 2^28).
  std::uniform_int_distribution<int32_t> wide(-(1 << 28), 1 << 28);

  // Accumulator: device layout [m, ld_acc] and the float values dequant_ref takes [m, n].
  const size_t elem = static_cast<size_t>(dtype_size(c.acc_dtype));
  std::vector<uint8_t> acc_bytes(static_cast<size_t>(c.m * c.ld_acc) * elem);
  std::vector<float> acc_f(static_cast<size_t>(c.m * c.n));
  std::vector<int32_t> acc_i(static_cast<size_t>(c.m * c.n));
  for (int64_t r = 0; r < c.m; ++r)
    for (int64_t j = 0; j < c.ld_acc; ++j) {
      uint8_t* dst = acc_bytes.data() + static_cast<size_t>(r * c.ld_acc + j) * elem;
      const size_t idx = static_cast<size_t>(r * c.n + j);
      if (c.acc_dtype == DType::kI32) {
        const int32_t v = wide(rng);
        std::memcpy(dst, &v, 4);
        if (j < c.n) acc_i[idx] = v;
      } else if (c.acc_dtype == DType::kF32) {
        const float v = normal(rng) * 1000.0f;
        std::memcpy(dst, &v, 4);
        if (j < c.n) acc_f[idx] = v;
      } else {
        const bf16_t v = bf16_from_float(normal(rng) * 100.0f);
        std::memcpy(dst, &v.bits, 2);
        if (j < c.n) acc_f[idx] = to_float(v);
      }
    }
  std::vector<float> token(c.has_token_scale ? c.m : 0), channel(c.has_channel_scale ? c.n : 0),
      bias(c.has_bias ? c.n : 0);
  std::uniform_real_distribution<float> positive(1e-4f, 1e-1f);
  for (float& v : token) v = positive(rng);
  for (float& v : channel) v = positive(rng);
  for (float& v : bias) v = normal(rng);

  // Residual bf16 values, [m, n] for the reference and [m, ld] on the device.
  const bool in_place = c.residual == Case::Residual::kInPlace;
  const int64_t ld_res = in_place ? c.ld_y : c.ld_residual;
  std::vector<bf16_t> residual;
  std::vector<uint8_t> residual_bytes;
  if (c.residual != Case::Residual::kNone) {
    residual.resize(static_cast<size_t>(c.m * c.n));
    residual_bytes.assign(static_cast<size_t>(c.m * ld_res) * 2, test::kPoison);
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t j = 0; j < c.n; ++j) {
        const bf16_t v = bf16_from_float(normal(rng) * 4.0f);
        residual[static_cast<size_t>(r * c.n + j)] = v;
        std::memcpy(residual_bytes.data() + static_cast<size_t>(r * ld_res + j) * 2, &v.bits, 2);
      }
  }
  std::vector<float> ref;
  if (c.residual == Case::Residual::kNone)
    ref = c.acc_dtype == DType::kI32 ? dequant_ref(acc_i, c.m, c.n, token, channel, bias)
                                     : dequant_ref(acc_f, c.m, c.n, token, channel, bias);
  else
    ref = c.acc_dtype == DType::kI32
              ? dequant_residual_unrounded_ref(acc_i, c.m, c.n, token, channel, bias, residual)
              : dequant_residual_unrounded_ref(acc_f, c.m, c.n, token, channel, bias, residual);
  // Expected y bytes [m, ld_y]: bf16 of the reference, stride padding left poisoned.
  std::vector<uint8_t> want(static_cast<size_t>(c.m * c.ld_y) * 2, test::kPoison);
  for (int64_t r = 0; r < c.m; ++r)
    for (int64_t j = 0; j < c.n; ++j) {
      const bf16_t v = bf16_from_float(ref[static_cast<size_t>(r * c.n + j)]);
      std::memcpy(want.data() + static_cast<size_t>(r * c.ld_y + j) * 2, &v.bits, 2);
    }

  const DeviceBuffer d_acc = test::upload(acc_bytes);
  const DeviceBuffer d_token = test::upload(test::as_bytes(token));
  const DeviceBuffer d_channel = test::upload(test::as_bytes(channel));
  const DeviceBuffer d_bias = test::upload(test::as_bytes(bias));
  GuardedBuffer y(want.size());
  CudaStream stream;
  const DeviceBuffer d_residual = test::upload(residual_bytes);
  if (in_place) {  // y starts as the residual; its stride padding stays poisoned
    SS_CUDA_CHECK(
        cudaMemcpy(y.get(), residual_bytes.data(), residual_bytes.size(), cudaMemcpyHostToDevice));
    for (int64_t r = 0; r < c.m; ++r)
      std::memcpy(want.data() + static_cast<size_t>(r * c.ld_y + c.n) * 2,
                  residual_bytes.data() + static_cast<size_t>(r * c.ld_y + c.n) * 2,
                  static_cast<size_t>(c.ld_y - c.n) * 2);
  }
  const void* res_ptr = c.residual == Case::Residual::kNone ? nullptr
                        : in_place                          ? y.get()
                                                            : d_residual.get();
  if (c.residual == Case::Residual::kNone)
    launch_dequant(d_acc.get(), c.acc_dtype, c.m, c.n, c.ld_acc,
                   c.has_token_scale ? d_token.as<float>() : nullptr,
                   c.has_channel_scale ? d_channel.as<float>() : nullptr,
                   c.has_bias ? d_bias.as<float>() : nullptr, y.get(), c.ld_y, stream.get(),
                   c.config);
  else
    launch_dequant(d_acc.get(), c.acc_dtype, c.m, c.n, c.ld_acc,
                   c.has_token_scale ? d_token.as<float>() : nullptr,
                   c.has_channel_scale ? d_channel.as<float>() : nullptr,
                   c.has_bias ? d_bias.as<float>() : nullptr, res_ptr, ld_res, y.get(), c.ld_y,
                   stream.get(), c.config);
  SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  test::expect_bytes_equal(y.download(), want, c.ld_y * 2, "y");
  EXPECT_TRUE(y.sentinel_intact()) << "write past the end of y";
}

TEST(DequantKernel, MatchesReference) {
  SS_SKIP_WITHOUT_GPU();
  struct MN {
    int64_t m, n;
  };
  const MN shapes[] = {{1, 1}, {17, 33}, {1000, 64}, {17, 1000}, {3, 4095}, {5, 2048}};
  for (DType acc : {DType::kI32, DType::kF32, DType::kBF16})
    for (const MN& s : shapes)
      for (int variant = 0; variant < 3; ++variant) {
        Case c;
        c.acc_dtype = acc;
        c.m = s.m;
        c.n = s.n;
        // 0: dense rows; 1: odd strides (element path); 2: aligned strides with padding.
        c.ld_acc = variant == 0 ? s.n : variant == 1 ? s.n + 5 : (s.n + 15) / 16 * 16 + 16;
        c.ld_y = variant == 0 ? s.n : variant == 1 ? s.n + 3 : (s.n + 15) / 16 * 16 + 8;
        run_case(c);
      }
}

TEST(DequantKernel, AbsentScalesAndBias) {
  SS_SKIP_WITHOUT_GPU();
  for (DType acc : {DType::kI32, DType::kF32, DType::kBF16})
    for (int mask = 0; mask < 8; ++mask) {
      Case c;
      c.acc_dtype = acc;
      c.m = 9;
      c.n = 200;
      c.ld_acc = 200;
      c.ld_y = 200;
      c.has_token_scale = mask & 1;
      c.has_channel_scale = mask & 2;
      c.has_bias = mask & 4;
      run_case(c);
    }
}

TEST(DequantKernel, LaunchConfigs) {
  SS_SKIP_WITHOUT_GPU();
  const KernelLaunchConfig configs[] = {{32, 1}, {64, 3}, {128, 16}, {1024, 1}, {0, 7}, {96, 0}};
  for (const KernelLaunchConfig& config : configs) {
    Case c;
    c.m = 45;
    c.n = 3000;
    c.ld_acc = 3000;
    c.ld_y = 3008;
    c.config = config;
    run_case(c);
  }
}

TEST(DequantKernel, ResidualAddedInTheSameRounding) {
  SS_SKIP_WITHOUT_GPU();
  struct MN {
    int64_t m, n;
  };
  const MN shapes[] = {{1, 1}, {17, 33}, {33, 1025}, {1025, 64}};
  for (DType acc : {DType::kI32, DType::kF32, DType::kBF16})
    for (const MN& s : shapes)
      for (auto residual : {Case::Residual::kSeparate, Case::Residual::kInPlace})
        for (int variant = 0; variant < 2; ++variant) {
          Case c;
          c.acc_dtype = acc;
          c.m = s.m;
          c.n = s.n;
          c.residual = residual;
          // 0: dense rows (vector path where aligned); 1: odd strides (element path).
          c.ld_acc = variant == 0 ? s.n : s.n + 5;
          c.ld_y = variant == 0 ? s.n : s.n + 3;
          c.ld_residual = variant == 0 ? s.n : s.n + 7;
          c.has_bias = s.m % 2 == 1;
          run_case(c);
        }
}

TEST(DequantKernel, RejectsBadArguments) {
  SS_SKIP_WITHOUT_GPU();
  DeviceBuffer acc(1 << 16), y(1 << 16);
  const DType i32 = DType::kI32;
  EXPECT_THROW(
      launch_dequant(nullptr, i32, 4, 64, 64, nullptr, nullptr, nullptr, y.get(), 64, nullptr),
      Error);
  EXPECT_THROW(
      launch_dequant(acc.get(), i32, 4, 64, 64, nullptr, nullptr, nullptr, nullptr, 64, nullptr),
      Error);
  EXPECT_THROW(
      launch_dequant(acc.get(), i32, 4, 0, 64, nullptr, nullptr, nullptr, y.get(), 64, nullptr),
      Error);
  EXPECT_THROW(
      launch_dequant(acc.get(), i32, -2, 64, 64, nullptr, nullptr, nullptr, y.get(), 64, nullptr),
      Error);
  EXPECT_THROW(
      launch_dequant(acc.get(), i32, 4, 64, 63, nullptr, nullptr, nullptr, y.get(), 64, nullptr),
      Error);
  EXPECT_THROW(
      launch_dequant(acc.get(), i32, 4, 64, 64, nullptr, nullptr, nullptr, y.get(), 60, nullptr),
      Error);
  EXPECT_THROW(launch_dequant(acc.get(), DType::kI8, 4, 64, 64, nullptr, nullptr, nullptr, y.get(),
                              64, nullptr),
               NotSupportedError);
  EXPECT_THROW(launch_dequant(acc.get(), i32, 4, 64, 64, nullptr, nullptr, nullptr, y.get(), 64,
                              nullptr, {100, 1}),
               Error);
  EXPECT_THROW(launch_dequant(acc.get(), i32, 4, 64, 64, nullptr, nullptr, nullptr, y.get(), 64,
                              nullptr, {2048, 1}),
               Error);
  EXPECT_NO_THROW(
      launch_dequant(nullptr, i32, 0, 64, 64, nullptr, nullptr, nullptr, nullptr, 64, nullptr));
  // residual stride too small; in place with another stride
  EXPECT_THROW(launch_dequant(acc.get(), i32, 4, 64, 64, nullptr, nullptr, nullptr, acc.get(), 32,
                              y.get(), 64, nullptr),
               Error);
  EXPECT_THROW(launch_dequant(acc.get(), i32, 4, 64, 64, nullptr, nullptr, nullptr, y.get(), 72,
                              y.get(), 64, nullptr),
               Error);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace slidesparse
