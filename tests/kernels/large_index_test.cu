// 64-bit indexing at Qwen2.5-7B sizes: quant_slide at M = 65536, K = 18944 (x is 2.5 GB, past
// 2^31 bytes; 2:8 gives K' = 28416, 2:16 gives K' = 33152 and 2.17e9 output elements, past 2^31)
// and dequant at M = 65536, N = 37888 (2.48e9 elements). Inputs are filled on the GPU from a
// fresh seed; sampled rows (around the 2^31 crossings and the last ones) are checked against the
// CPU reference, and the sentinels after the outputs must survive.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/dequant.h"
#include "kernels/kernel_test_util.h"
#include "kernels/quant.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/core/quant.h"

namespace slidesparse {
namespace {

using test::GuardedBuffer;

__device__ uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// bf16 values in (-1, 1) times 2^-4 ... 2^3, so rows have different scales.
__global__ void fill_bf16(__nv_bfloat16* x, int64_t count, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t h = splitmix64(seed ^ static_cast<uint64_t>(i));
    const float unit = static_cast<float>(h & 0xFFFFFF) / 8388608.0f - 1.0f;
    const float v = ldexpf(unit, static_cast<int>((h >> 24) & 7) - 4);
    x[i] = __float2bfloat16_rn(v);
  }
}

__global__ void fill_i32(int32_t* a, int64_t count, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t h = splitmix64(seed ^ static_cast<uint64_t>(i));
    a[i] = static_cast<int32_t>(h & 0x3FFFFFF) - (1 << 25);
  }
}

bool have_free_memory(size_t bytes) {
  size_t free_bytes = 0, total = 0;
  SS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  return free_bytes > bytes + (size_t{1} << 30);
}

TEST(LargeIndex, QuantSlidePast2To31) {
  SS_SKIP_WITHOUT_GPU();
  constexpr int64_t kM = 65536, kK = 18944, kMPad = kM + 16;
  const int64_t x_bytes = kM * kK * 2;
  ASSERT_TRUE(have_free_memory(static_cast<size_t>(x_bytes + kMPad * 33152)))
      << "needs " << ((x_bytes + kMPad * 33152) >> 20) << " MiB + 1 GiB of free GPU memory";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  DeviceBuffer x(static_cast<size_t>(x_bytes));
  fill_bf16<<<4096, 256>>>(x.as<__nv_bfloat16>(), kM * kK, seed);
  SS_CHECK_LAUNCH("fill_bf16");

  for (const char* pattern : {"2:8", "2:16"}) {
    const Sparsity sparsity = Sparsity::parse(pattern);
    const int64_t k_slide = sparsity.k_slide(kK);
    SCOPED_TRACE(std::string("pattern ") + pattern + " K'=" + std::to_string(k_slide));
    GuardedBuffer out(static_cast<size_t>(kMPad * k_slide));
    GuardedBuffer scales(static_cast<size_t>(kMPad) * sizeof(float));
    launch_quant_slide(x.get(), DType::kBF16, kM, kK, kK, sparsity, DType::kI8, out.get(), kMPad,
                       scales.as<float>(), nullptr);
    SS_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_TRUE(out.sentinel_intact());
    EXPECT_TRUE(scales.sentinel_intact());
    const std::vector<uint8_t> all_scales = scales.download();
    // Rows around 2^31 bytes of x (56680) and of the output, the last row, the padding rows.
    std::vector<int64_t> rows = {0, 1, kM / 2, 56680, 64778, kM - 2, kM - 1, kM, kMPad - 1};
    if ((int64_t{1} << 31) / k_slide < kMPad) rows.push_back((int64_t{1} << 31) / k_slide);
    for (int64_t row : rows) {
      SCOPED_TRACE("row " + std::to_string(row));
      const std::vector<uint8_t> got =
          out.download_range(static_cast<size_t>(row * k_slide), static_cast<size_t>(k_slide));
      float got_scale;
      std::memcpy(&got_scale, all_scales.data() + row * 4, 4);
      if (row >= kM) {
        EXPECT_EQ(got, std::vector<uint8_t>(static_cast<size_t>(k_slide), 0));
        EXPECT_EQ(got_scale, 0.0f);
        continue;
      }
      std::vector<bf16_t> x_row(static_cast<size_t>(kK));
      SS_CUDA_CHECK(cudaMemcpy(x_row.data(), x.as<uint8_t>() + row * kK * 2,
                               static_cast<size_t>(kK) * 2, cudaMemcpyDeviceToHost));
      const auto q = quantize_rows_int8(to_float_vector(x_row), 1, kK);
      const auto lifted = lift_activations<int8_t>(q.codes, 1, kK, sparsity);
      test::expect_bytes_equal(got, test::as_bytes(lifted), k_slide, "lifted row");
      EXPECT_EQ(got_scale, q.scales[0]);
    }
  }
}

TEST(LargeIndex, DequantPast2To31) {
  SS_SKIP_WITHOUT_GPU();
  constexpr int64_t kM = 65536, kN = 37888;
  const size_t acc_bytes = static_cast<size_t>(kM * kN) * 4,
               y_bytes = static_cast<size_t>(kM * kN) * 2;
  ASSERT_TRUE(have_free_memory(acc_bytes + y_bytes))
      << "needs " << ((acc_bytes + y_bytes) >> 20) << " MiB + 1 GiB of free GPU memory";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  DeviceBuffer acc(acc_bytes);
  fill_i32<<<4096, 256>>>(acc.as<int32_t>(), kM * kN, seed);
  SS_CHECK_LAUNCH("fill_i32");
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> positive(1e-5f, 1e-2f), normal(-1.0f, 1.0f);
  std::vector<float> token(kM), channel(kN), bias(kN);
  for (float& v : token) v = positive(rng);
  for (float& v : channel) v = positive(rng);
  for (float& v : bias) v = normal(rng);
  const DeviceBuffer d_token = test::upload(test::as_bytes(token));
  const DeviceBuffer d_channel = test::upload(test::as_bytes(channel));
  const DeviceBuffer d_bias = test::upload(test::as_bytes(bias));
  GuardedBuffer y(y_bytes);
  launch_dequant(acc.get(), DType::kI32, kM, kN, kN, d_token.as<float>(), d_channel.as<float>(),
                 d_bias.as<float>(), y.get(), kN, nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(y.sentinel_intact());
  // Row 56680 is where row * N passes 2^31 elements; 28340 where the byte offset of y does.
  for (int64_t row : {int64_t{0}, int64_t{28340}, int64_t{56680}, int64_t{56681}, kM - 1}) {
    SCOPED_TRACE("row " + std::to_string(row));
    std::vector<int32_t> acc_row(static_cast<size_t>(kN));
    SS_CUDA_CHECK(cudaMemcpy(acc_row.data(), acc.as<int32_t>() + row * kN,
                             static_cast<size_t>(kN) * 4, cudaMemcpyDeviceToHost));
    const std::vector<float> ref = dequant_ref(acc_row, 1, kN, {&token[row], 1}, channel, bias);
    std::vector<bf16_t> want(static_cast<size_t>(kN));
    for (int64_t j = 0; j < kN; ++j) want[j] = bf16_from_float(ref[j]);
    const std::vector<uint8_t> got =
        y.download_range(static_cast<size_t>(row * kN) * 2, static_cast<size_t>(kN) * 2);
    test::expect_bytes_equal(got, test::as_bytes(want), kN * 2, "y row");
  }
}

}  // namespace
}  // namespace slidesparse
