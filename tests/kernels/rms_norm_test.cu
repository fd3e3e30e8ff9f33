// GPU RMSNorm kernels: launch_rms_norm bit-equal to a CPU replica of its documented summation
// order (and within one bf16 ulp of core's rms_norm_ref, which sums in double), the row gather,
// and launch_rms_norm_quant bit-equal to launch_rms_norm then launch_quant / launch_quant_slide
// and to the CPU chain, for int8 and fp8, plain and every L from 4 to 16, odd sizes, padding rows
// and columns, several launch configs, and one case with M * K' > 2^31.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/kernel_test_util.h"
#include "kernels/producer_test_util.h"
#include "kernels/quant.h"
#include "kernels/rms_norm.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/core/ops_ref.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using test::GuardedBuffer;

constexpr float kEps = 1e-6f;

// The butterfly of rms_norm.cu over 32 values: pairs 16 apart, then 8, 4, 2, 1.
float butterfly32(std::vector<float> a) {
  for (int off = 16; off > 0; off /= 2)
    for (int l = 0; l < off; ++l) a[l] = a[l] + a[l + off];
  return a[0];
}

// CPU replica of the GPU norm's summation order (rms_norm.cu file comment), so that the GPU
// result can be checked bit for bit.
std::vector<bf16_t> rms_norm_gpu_order(const std::vector<bf16_t>& x, int64_t m, int64_t k,
                                       const std::vector<bf16_t>& w, float eps) {
  const int64_t n_vec = (k + 7) / 8, n_groups = (n_vec + 31) / 32;
  std::vector<bf16_t> y(static_cast<size_t>(m * k));
  for (int64_t r = 0; r < m; ++r) {
    const bf16_t* row = x.data() + r * k;
    std::vector<float> vec_sums(static_cast<size_t>(n_groups * 32), 0.0f);
    for (int64_t v = 0; v < n_vec; ++v) {
      float s = 0.0f;
      for (int e = 0; e < 8; ++e) {
        const int64_t c = v * 8 + e;
        const float f = c < k ? to_float(row[c]) : 0.0f;
        s = std::fma(f, f, s);
      }
      vec_sums[static_cast<size_t>(v)] = s;
    }
    std::vector<float> acc(32, 0.0f);
    for (int64_t g = 0; g < n_groups; ++g) {
      const float group = butterfly32(
          std::vector<float>(vec_sums.begin() + g * 32, vec_sums.begin() + g * 32 + 32));
      acc[static_cast<size_t>(g % 32)] = acc[static_cast<size_t>(g % 32)] + group;
    }
    const float mean = butterfly32(acc) / static_cast<float>(k);
    const float inv = 1.0f / std::sqrt(mean + eps);
    for (int64_t c = 0; c < k; ++c) {
      const bf16_t n = bf16_from_float(to_float(row[c]) * inv);
      y[static_cast<size_t>(r * k + c)] = bf16_from_float(to_float(n) * to_float(w[c]));
    }
  }
  return y;
}

std::vector<bf16_t> random_weight(int64_t k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.25f, 2.0f);
  std::vector<bf16_t> w(static_cast<size_t>(k));
  for (auto& v : w) v = bf16_from_float(u(rng) * (rng() & 1 ? 1.0f : -1.0f));
  return w;
}

// x [m, ld_x] from x [m, k].
std::vector<bf16_t> with_stride(const std::vector<bf16_t>& x, int64_t m, int64_t k, int64_t ld) {
  std::vector<bf16_t> out(static_cast<size_t>(m * ld), bf16_from_float(1e4f));
  for (int64_t r = 0; r < m; ++r)
    std::copy(x.begin() + r * k, x.begin() + r * k + k, out.begin() + r * ld);
  return out;
}

TEST(RmsNormKernel, MatchesReferenceOrderExactlyAndDoubleReferenceWithinOneUlp) {
  SS_SKIP_WITHOUT_GPU();
  struct Shape {
    int64_t m, k, ld_x, ld_y;
  };
  for (const Shape& s :
       {Shape{1, 296, 296, 296}, Shape{17, 33, 40, 33}, Shape{33, 1000, 1003, 1000},
        Shape{1025, 296, 304, 312}, Shape{3, 18944, 18944, 18944}, Shape{2, 40000, 40000, 40000}}) {
    const uint64_t seed = test::fresh_seed();
    SCOPED_TRACE("m=" + std::to_string(s.m) + " k=" + std::to_string(s.k) +
                 " seed=" + std::to_string(seed));
    const auto x = test::random_bf16_rows(s.m, s.k, seed);
    const auto w = random_weight(s.k, seed + 1);
    const DeviceBuffer d_x = test::upload_bf16(with_stride(x, s.m, s.k, s.ld_x));
    const DeviceBuffer d_w = test::upload_bf16(w);
    GuardedBuffer y(static_cast<size_t>(s.m * s.ld_y) * 2);
    CudaStream stream;
    launch_rms_norm(d_x.get(), s.ld_x, nullptr, d_w.get(), kEps, s.m, s.k, y.get(), s.ld_y,
                    stream.get());
    SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    const auto got_strided = test::bytes_to_bf16(y.download());
    EXPECT_TRUE(y.sentinel_intact());
    std::vector<bf16_t> got(static_cast<size_t>(s.m * s.k));
    for (int64_t r = 0; r < s.m; ++r) {
      std::copy(got_strided.begin() + r * s.ld_y, got_strided.begin() + r * s.ld_y + s.k,
                got.begin() + r * s.k);
      for (int64_t c = s.k; c < s.ld_y; ++c)
        EXPECT_EQ(got_strided[static_cast<size_t>(r * s.ld_y + c)].bits, 0x5A5A)
            << "stride padding of y was written";
    }
    test::compare_bf16(got, rms_norm_gpu_order(x, s.m, s.k, w, kEps), s.k, "gpu order", true);
    const auto diff =
        test::compare_bf16(got, rms_norm_ref(x, s.m, s.k, w, kEps), s.k, "ref", false);
    // r may differ by one float ulp from the double sum: rare one-ulp changes of y.
    EXPECT_LE(diff.max_ulps, 1);
    EXPECT_LE(diff.mismatches, std::max<int64_t>(2, s.m * s.k / 100))
        << diff.mismatches << " of " << s.m * s.k << " differ from rms_norm_ref";
  }
}

TEST(RmsNormKernel, GathersRows) {
  SS_SKIP_WITHOUT_GPU();
  const int64_t rows = 40, k = 1000;
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  const auto x = test::random_bf16_rows(rows, k, seed);
  const auto w = random_weight(k, seed + 1);
  const std::vector<int32_t> index = {39, 0, 7, 7, 21, 38, 1};
  const int64_t m = static_cast<int64_t>(index.size());
  std::vector<bf16_t> gathered;
  for (int32_t i : index) gathered.insert(gathered.end(), x.begin() + i * k, x.begin() + i * k + k);
  const DeviceBuffer d_x = test::upload_bf16(x), d_w = test::upload_bf16(w);
  const DeviceBuffer d_index = test::upload(test::as_bytes(index));
  GuardedBuffer y(static_cast<size_t>(m * k) * 2);
  launch_rms_norm(d_x.get(), k, d_index.as<int32_t>(), d_w.get(), kEps, m, k, y.get(), k, nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  test::compare_bf16(test::bytes_to_bf16(y.download()), rms_norm_gpu_order(gathered, m, k, w, kEps),
                     k, "gathered", true);
  EXPECT_TRUE(y.sentinel_intact());
}

struct FusedCase {
  int64_t m, k, ld_x, m_pad;
  DType dtype;
  int block;  // 0: plain quant
  KernelLaunchConfig config{};
};

std::string describe(const FusedCase& c) {
  return "m=" + std::to_string(c.m) + " k=" + std::to_string(c.k) +
         " ld_x=" + std::to_string(c.ld_x) + " m_pad=" + std::to_string(c.m_pad) +
         " dtype=" + std::string(dtype_name(c.dtype)) + " L=" + std::to_string(c.block) +
         " config=" + std::to_string(c.config.block_threads) + "x" +
         std::to_string(c.config.rows_per_block);
}

// Fused output and scales vs the GPU chain (launch_rms_norm then launch_quant(_slide)) and vs
// the CPU chain (GPU-order norm, core quantisation and lifting): both bit for bit.
void run_fused(const FusedCase& c) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(describe(c) + " seed=" + std::to_string(seed));
  const auto x = test::random_bf16_rows(c.m, c.k, seed);
  const auto w = random_weight(c.k, seed + 1);
  const std::optional<Sparsity> slide =
      c.block != 0 ? std::optional(Sparsity::from_block(c.block)) : std::nullopt;
  const int64_t k_out = slide ? slide->k_slide(c.k) : ((c.k + 31) / 32) * 32 + 16;
  const DeviceBuffer d_x = test::upload_bf16(with_stride(x, c.m, c.k, c.ld_x));
  const DeviceBuffer d_w = test::upload_bf16(w);
  const size_t out_bytes = static_cast<size_t>(c.m_pad * k_out);
  const size_t scale_bytes = static_cast<size_t>(c.m_pad) * 4;
  GuardedBuffer fused(out_bytes), fused_scales(scale_bytes), chain(out_bytes),
      chain_scales(scale_bytes), normed(static_cast<size_t>(c.m * c.k) * 2);
  CudaStream stream;
  launch_rms_norm_quant(d_x.get(), c.ld_x, d_w.get(), kEps, c.m, c.k, c.dtype,
                        slide ? &*slide : nullptr, fused.get(), c.m_pad, k_out,
                        fused_scales.as<float>(), stream.get(), c.config);
  launch_rms_norm(d_x.get(), c.ld_x, nullptr, d_w.get(), kEps, c.m, c.k, normed.get(), c.k,
                  stream.get());
  if (slide) {
    launch_quant_slide(normed.get(), DType::kBF16, c.m, c.k, c.k, *slide, c.dtype, chain.get(),
                       c.m_pad, chain_scales.as<float>(), stream.get());
  } else {
    launch_quant(normed.get(), DType::kBF16, c.m, c.k, c.k, c.dtype, chain.get(), c.m_pad, k_out,
                 chain_scales.as<float>(), stream.get());
  }
  SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  const auto got = fused.download();
  const auto got_scales = fused_scales.download();
  EXPECT_EQ(test::expect_bytes_equal(got, chain.download(), k_out, "fused vs GPU chain"), 0);
  EXPECT_EQ(test::expect_bytes_equal(got_scales, chain_scales.download(), 4, "scales vs chain"), 0);
  EXPECT_TRUE(fused.sentinel_intact() && fused_scales.sentinel_intact());

  // CPU chain.
  const auto normed_cpu = to_float_vector(rms_norm_gpu_order(x, c.m, c.k, w, kEps));
  std::vector<uint8_t> want(out_bytes, 0);
  std::vector<float> want_scales(static_cast<size_t>(c.m_pad), 0.0f);
  auto place = [&](const auto& q) {
    std::copy(q.scales.begin(), q.scales.end(), want_scales.begin());
    using Code = typename std::decay_t<decltype(q.codes)>::value_type;
    if (slide) {
      const auto lifted = lift_activations<Code>(q.codes, c.m, c.k, *slide);
      std::memcpy(want.data(), lifted.data(), lifted.size());
    } else {
      for (int64_t r = 0; r < c.m; ++r)
        std::memcpy(want.data() + r * k_out, q.codes.data() + r * c.k, static_cast<size_t>(c.k));
    }
  };
  if (c.dtype == DType::kI8) {
    place(quantize_rows_int8(normed_cpu, c.m, c.k));
  } else {
    place(quantize_rows_e4m3(normed_cpu, c.m, c.k));
  }
  EXPECT_EQ(test::expect_bytes_equal(got, want, k_out, "fused vs CPU chain"), 0);
  EXPECT_EQ(test::expect_bytes_equal(got_scales, test::as_bytes(want_scales), 4, "scales vs CPU"),
            0);
}

struct MK {
  int64_t m, k;
};
const MK kShapes[] = {{1, 296}, {17, 33}, {33, 1000}, {1025, 296}, {5, 4104}};

TEST(RmsNormQuantKernel, EqualsUnfusedChainPlainAndEveryBlockLength) {
  SS_SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::kI8, DType::kFP8E4M3})
    for (int block = 0; block <= kMaxSlideBlock; block += (block == 0 ? 4 : 2))
      for (const MK& s : kShapes) {
        const int64_t ld = s.k % 2 == 0 ? s.k + 8 : s.k;
        run_fused({s.m, s.k, ld, s.m % 2 ? ((s.m + 15) / 16) * 16 : s.m, dtype, block});
      }
}

// Every launch configuration gives the same bits (the norm's order does not depend on it),
// including configs that split the row into several register chunks.
TEST(RmsNormQuantKernel, LaunchConfigsGiveIdenticalResults) {
  SS_SKIP_WITHOUT_GPU();
  for (const KernelLaunchConfig& config :
       {KernelLaunchConfig{32, 1}, KernelLaunchConfig{64, 2}, KernelLaunchConfig{128, 4},
        KernelLaunchConfig{512, 1}, KernelLaunchConfig{512, 16}, KernelLaunchConfig{0, 2}})
    for (int block : {0, 8, 14}) run_fused({37, 4095, 4096, 48, DType::kI8, block, config});
}

TEST(RmsNormQuantKernel, RejectsBadArguments) {
  SS_SKIP_WITHOUT_GPU();
  DeviceBuffer x(1 << 16), w(1 << 12), out(1 << 16), sc(1 << 12);
  const Sparsity s28 = Sparsity::parse("2:8"), s218 = Sparsity::from_block(18);
  auto run = [&](const void* xp, int64_t k, DType d, const Sparsity* sp, int64_t m_pad,
                 int64_t k_out, float* scales) {
    launch_rms_norm_quant(xp, 64, w.get(), kEps, 4, k, d, sp, out.get(), m_pad, k_out, scales,
                          nullptr);
  };
  float* scales = sc.as<float>();
  EXPECT_THROW(run(nullptr, 64, DType::kI8, nullptr, 4, 64, scales), Error);
  EXPECT_THROW(run(x.get(), 64, DType::kI8, nullptr, 4, 64, nullptr), Error);
  EXPECT_THROW(run(x.get(), 64, DType::kI8, nullptr, 3, 64, scales), Error);
  EXPECT_THROW(run(x.get(), 64, DType::kI8, nullptr, 4, 63, scales), Error);
  EXPECT_THROW(run(x.get(), 64, DType::kBF16, nullptr, 4, 64, scales), NotSupportedError);
  EXPECT_THROW(run(x.get(), 64, DType::kI8, &s28, 4, 64, scales), Error);  // k_out != K'
  EXPECT_THROW(run(x.get(), 64, DType::kI8, &s218, 4, s218.k_slide(64), scales), NotSupportedError);
  EXPECT_THROW(launch_rms_norm(x.get(), 32, nullptr, w.get(), kEps, 4, 64, out.get(), 64, nullptr),
               Error);  // ld_x < k
  EXPECT_THROW(launch_rms_norm(x.get(), 64, nullptr, w.get(), -1.0f, 4, 64, out.get(), 64, nullptr),
               Error);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

__device__ uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// bf16 values in +-(2^-5 ... 2^3), never zero.
__global__ void fill_bf16(__nv_bfloat16* x, int64_t count, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t h = splitmix64(seed ^ static_cast<uint64_t>(i));
    const float unit = 1.0f + static_cast<float>(h & 0xFFFF) / 65536.0f;
    const float v = ldexpf((h >> 20) & 1 ? unit : -unit, static_cast<int>((h >> 24) & 7) - 5);
    x[i] = __float2bfloat16_rn(v);
  }
}

// M * K' > 2^31 (M = 65536, K = 18944, 2:16: K' = 33152): sampled rows of the fused output equal
// the unfused chain on those rows (launch_rms_norm gathers them), padding rows are zero.
TEST(RmsNormQuantKernel, LargeIndexPast2To31) {
  SS_SKIP_WITHOUT_GPU();
  constexpr int64_t kM = 65536, kK = 18944, kMPad = kM + 16;
  const Sparsity sparsity = Sparsity::from_block(16);
  const int64_t k_slide = sparsity.k_slide(kK);
  size_t free_bytes = 0, total = 0;
  SS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  const size_t need = static_cast<size_t>(kM * kK * 2 + kMPad * k_slide) + (size_t{1} << 30);
  ASSERT_GE(free_bytes, need) << "needs " << (need >> 20) << " MiB of free GPU memory";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  DeviceBuffer x(static_cast<size_t>(kM * kK * 2));
  fill_bf16<<<4096, 256>>>(x.as<__nv_bfloat16>(), kM * kK, seed);
  SS_CHECK_LAUNCH("fill_bf16");
  const auto w = random_weight(kK, seed);
  const DeviceBuffer d_w = test::upload_bf16(w);
  GuardedBuffer out(static_cast<size_t>(kMPad * k_slide)), scales(static_cast<size_t>(kMPad) * 4);
  launch_rms_norm_quant(x.get(), kK, d_w.get(), kEps, kM, kK, DType::kFP8E4M3, &sparsity, out.get(),
                        kMPad, k_slide, scales.as<float>(), nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(out.sentinel_intact() && scales.sentinel_intact());

  const std::vector<int32_t> rows = {0, 1, 32768, 56680, 64777, 64778, kM - 2, kM - 1};
  const int64_t n = static_cast<int64_t>(rows.size());
  const DeviceBuffer d_rows = test::upload(test::as_bytes(rows));
  DeviceBuffer normed(static_cast<size_t>(n * kK * 2)), chain(static_cast<size_t>(n * k_slide)),
      chain_scales(static_cast<size_t>(n) * 4);
  launch_rms_norm(x.get(), kK, d_rows.as<int32_t>(), d_w.get(), kEps, n, kK, normed.get(), kK,
                  nullptr);
  launch_quant_slide(normed.get(), DType::kBF16, n, kK, kK, sparsity, DType::kFP8E4M3, chain.get(),
                     n, chain_scales.as<float>(), nullptr);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint8_t> want(static_cast<size_t>(n * k_slide));
  std::vector<float> want_scales(static_cast<size_t>(n));
  SS_CUDA_CHECK(cudaMemcpy(want.data(), chain.get(), want.size(), cudaMemcpyDeviceToHost));
  SS_CUDA_CHECK(cudaMemcpy(want_scales.data(), chain_scales.get(), want_scales.size() * 4,
                           cudaMemcpyDeviceToHost));
  const auto all_scales = scales.download();
  for (int64_t i = 0; i < n; ++i) {
    SCOPED_TRACE("row " + std::to_string(rows[i]));
    const auto got =
        out.download_range(static_cast<size_t>(rows[i] * k_slide), static_cast<size_t>(k_slide));
    test::expect_bytes_equal(
        got, std::vector<uint8_t>(want.begin() + i * k_slide, want.begin() + (i + 1) * k_slide),
        k_slide, "row");
    float s;
    std::memcpy(&s, all_scales.data() + rows[i] * 4, 4);
    EXPECT_EQ(s, want_scales[static_cast<size_t>(i)]);
  }
  for (int64_t row : {kM, kMPad - 1}) {
    EXPECT_EQ(out.download_range(static_cast<size_t>(row * k_slide), static_cast<size_t>(k_slide)),
              std::vector<uint8_t>(static_cast<size_t>(k_slide), 0));
    float s;
    std::memcpy(&s, all_scales.data() + row * 4, 4);
    EXPECT_EQ(s, 0.0f);
  }
}

}  // namespace
}  // namespace slidesparse
