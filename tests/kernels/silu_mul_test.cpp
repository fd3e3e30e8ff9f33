// GPU SwiGLU kernels: launch_silu_mul within one bf16 ulp of core's silu_mul_ref (libm exp; the
// kernel's exp2 differs by a few float ulps, so a few elements may round the other way), and
// launch_silu_mul_quant bit-equal to launch_silu_mul then launch_quant / launch_quant_slide, for
// int8 and fp8, plain and every L from 4 to 16, odd sizes, strides and padding rows.
#include "kernels/silu_mul.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/kernel_test_util.h"
#include "kernels/producer_test_util.h"
#include "kernels/quant.h"
#include "slidesparse/core/ops_ref.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using test::GuardedBuffer;

// gate_up [m, ld] with row stride ld >= 2 * inter; values around the silu knee (|g| up to ~30).
// (The columns past 2 * inter are stride padding the kernels must not use.)
std::vector<bf16_t> random_gate_up(int64_t m, int64_t ld, uint64_t seed) {
  return test::random_bf16_rows(m, ld, seed, -1.0f, 0.7f);
}

std::vector<bf16_t> packed_rows(const std::vector<bf16_t>& v, int64_t m, int64_t cols, int64_t ld) {
  std::vector<bf16_t> out(static_cast<size_t>(m * cols));
  for (int64_t r = 0; r < m; ++r)
    std::copy(v.begin() + r * ld, v.begin() + r * ld + cols, out.begin() + r * cols);
  return out;
}

struct MK {
  int64_t m, inter;
};
const MK kShapes[] = {{1, 296}, {17, 33}, {33, 1000}, {1025, 296}, {3, 18944}, {2, 40000}};

TEST(SiluMulKernel, WithinOneUlpOfReference) {
  SS_SKIP_WITHOUT_GPU();
  for (const MK& s : kShapes) {
    const int64_t ld = 2 * s.inter + (s.inter % 2 ? 0 : 8);
    const uint64_t seed = test::fresh_seed();
    SCOPED_TRACE("m=" + std::to_string(s.m) + " inter=" + std::to_string(s.inter) +
                 " seed=" + std::to_string(seed));
    const auto gate_up = random_gate_up(s.m, ld, seed);
    const DeviceBuffer d_gu = test::upload_bf16(gate_up);
    GuardedBuffer y(static_cast<size_t>(s.m * s.inter) * 2);
    launch_silu_mul(d_gu.get(), ld, s.m, s.inter, y.get(), nullptr);
    SS_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_TRUE(y.sentinel_intact());
    const auto want = silu_mul_ref(packed_rows(gate_up, s.m, 2 * s.inter, ld), s.m, s.inter);
    const auto diff =
        test::compare_bf16(test::bytes_to_bf16(y.download()), want, s.inter, "silu_mul", false);
    EXPECT_LE(diff.max_ulps, 1);
    EXPECT_LE(diff.mismatches, std::max<int64_t>(2, s.m * s.inter / 1000))
        << diff.mismatches << " of " << s.m * s.inter << " elements differ by one ulp";
  }
}

void run_fused(int64_t m, int64_t inter, int64_t ld, int64_t m_pad, DType dtype, int block,
               KernelLaunchConfig config = {}) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("m=" + std::to_string(m) + " inter=" + std::to_string(inter) +
               " ld=" + std::to_string(ld) + " dtype=" + std::string(dtype_name(dtype)) +
               " L=" + std::to_string(block) + " config=" + std::to_string(config.block_threads) +
               "x" + std::to_string(config.rows_per_block) + " seed=" + std::to_string(seed));
  const std::optional<Sparsity> slide =
      block != 0 ? std::optional(Sparsity::from_block(block)) : std::nullopt;
  const int64_t k_out = slide ? slide->k_slide(inter) : ((inter + 31) / 32) * 32;
  const DeviceBuffer d_gu = test::upload_bf16(random_gate_up(m, ld, seed));
  const size_t out_bytes = static_cast<size_t>(m_pad * k_out), scale_bytes = static_cast<size_t>(m_pad) * 4;
  GuardedBuffer fused(out_bytes), fused_scales(scale_bytes), chain(out_bytes),
      chain_scales(scale_bytes), act(static_cast<size_t>(m * inter) * 2);
  CudaStream stream;
  launch_silu_mul_quant(d_gu.get(), ld, m, inter, dtype, slide ? &*slide : nullptr, fused.get(),
                        m_pad, k_out, fused_scales.as<float>(), stream.get(), config);
  launch_silu_mul(d_gu.get(), ld, m, inter, act.get(), stream.get());
  if (slide) {
    launch_quant_slide(act.get(), DType::kBF16, m, inter, inter, *slide, dtype, chain.get(), m_pad,
                       chain_scales.as<float>(), stream.get());
  } else {
    launch_quant(act.get(), DType::kBF16, m, inter, inter, dtype, chain.get(), m_pad, k_out,
                 chain_scales.as<float>(), stream.get());
  }
  SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  EXPECT_EQ(test::expect_bytes_equal(fused.download(), chain.download(), k_out, "fused vs chain"),
            0);
  EXPECT_EQ(test::expect_bytes_equal(fused_scales.download(), chain_scales.download(), 4,
                                     "scales vs chain"),
            0);
  EXPECT_TRUE(fused.sentinel_intact() && fused_scales.sentinel_intact());
}

TEST(SiluMulQuantKernel, EqualsUnfusedChainPlainAndEveryBlockLength) {
  SS_SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::kI8, DType::kFP8E4M3})
    for (int block = 0; block <= kMaxSlideBlock; block += (block == 0 ? 4 : 2))
      for (const MK& s : kShapes) {
        if (s.inter > 20000) continue;
        const int64_t ld = 2 * s.inter + (s.inter % 2 ? 1 : 8);
        run_fused(s.m, s.inter, ld, s.m % 2 ? ((s.m + 15) / 16) * 16 : s.m, dtype, block);
      }
}

TEST(SiluMulQuantKernel, LaunchConfigsGiveIdenticalResults) {
  SS_SKIP_WITHOUT_GPU();
  for (const KernelLaunchConfig& config : {KernelLaunchConfig{32, 1}, KernelLaunchConfig{128, 4},
                                           KernelLaunchConfig{512, 1}, KernelLaunchConfig{0, 2}})
    for (int block : {0, 6, 16}) run_fused(37, 4095, 8190, 48, DType::kFP8E4M3, block, config);
}

TEST(SiluMulQuantKernel, RejectsBadArguments) {
  SS_SKIP_WITHOUT_GPU();
  DeviceBuffer gu(1 << 16), out(1 << 16), sc(1 << 12);
  const Sparsity s28 = Sparsity::parse("2:8");
  EXPECT_THROW(launch_silu_mul(gu.get(), 100, 4, 64, out.get(), nullptr), Error);  // ld < 2I
  EXPECT_THROW(launch_silu_mul(nullptr, 128, 4, 64, out.get(), nullptr), Error);
  EXPECT_THROW(launch_silu_mul_quant(gu.get(), 128, 4, 64, DType::kI8, nullptr, out.get(), 4, 63,
                                     sc.as<float>(), nullptr),
               Error);
  EXPECT_THROW(launch_silu_mul_quant(gu.get(), 128, 4, 64, DType::kI8, &s28, out.get(), 4, 64,
                                     sc.as<float>(), nullptr),
               Error);
  EXPECT_THROW(launch_silu_mul_quant(gu.get(), 128, 4, 64, DType::kF16, nullptr, out.get(), 4, 64,
                                     sc.as<float>(), nullptr),
               NotSupportedError);
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace slidesparse
