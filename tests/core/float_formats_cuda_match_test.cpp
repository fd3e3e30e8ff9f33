// The host conversions against CUDA's own (cuda_fp8.h / cuda_bf16.h host code paths, no GPU
// needed) on a sweep of float bit patterns: the GPU kernels and the CPU reference must produce
// the same bits. (A one-off run over all 2^32 floats also showed no difference.)
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "slidesparse/core/float_formats.h"

namespace slidesparse {
namespace {

float float_of_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Every `stride`-th bit pattern of [first, last], both signs.
template <class Check>
void sweep(uint32_t first, uint32_t last, uint32_t stride, Check check) {
  for (uint64_t bits = first; bits <= last; bits += stride) {
    check(static_cast<uint32_t>(bits));
    check(static_cast<uint32_t>(bits) | 0x80000000u);
  }
}

TEST(FloatFormatsCudaMatch, E4M3EncodeMatchesSatfiniteConversion) {
  int64_t mismatches = 0;
  auto check = [&](uint32_t bits) {
    const float f = float_of_bits(bits);
    const uint8_t want = __nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3);
    const uint8_t got = e4m3_from_float(f).bits;
    if (want != got && ++mismatches <= 5)
      ADD_FAILURE() << std::hex << "float bits 0x" << bits << ": CUDA 0x" << int(want)
                    << ", ours 0x" << int(got);
  };
  sweep(0x00000000u, 0x7FFFFFFFu, 4099, check);  // everything, coarsely (NaN and inf included)
  sweep(0x39800000u, 0x44000000u, 61, check);    // 2^-12 .. 512: subnormals to saturation, finely
  sweep(0x7F800000u, 0x7F800010u, 1, check);     // inf and the first NaNs
  EXPECT_EQ(mismatches, 0);
}

TEST(FloatFormatsCudaMatch, E4M3DecodeMatchesForEveryCode) {
  for (int code = 0; code < 256; ++code) {
    __nv_fp8_e4m3 v;
    v.__x = static_cast<__nv_fp8_storage_t>(code);
    const float want = static_cast<float>(v);
    const float got = to_float(fp8_e4m3_t{static_cast<uint8_t>(code)});
    if (want != want) {
      EXPECT_NE(got, got) << "code " << code;
    } else {
      EXPECT_EQ(std::memcmp(&want, &got, sizeof(float)), 0) << "code " << code;
    }
  }
}

TEST(FloatFormatsCudaMatch, Bf16EncodeMatchesRoundToNearest) {
  int64_t mismatches = 0;
  auto check = [&](uint32_t bits) {
    const float f = float_of_bits(bits);
    const __nv_bfloat16 b = __float2bfloat16_rn(f);
    uint16_t want;
    std::memcpy(&want, &b, sizeof(want));
    const uint16_t got = bf16_from_float(f).bits;
    if (want != got && ++mismatches <= 5)
      ADD_FAILURE() << std::hex << "float bits 0x" << bits << ": CUDA 0x" << want << ", ours 0x"
                    << got;
  };
  sweep(0x00000000u, 0x7FFFFFFFu, 4093, check);
  sweep(0x3F800000u, 0x3F810000u, 1, check);  // every pattern between 1 and 1 + 2^-7
  sweep(0x7F7F0000u, 0x7F800010u, 1, check);  // the top of the range, inf, first NaNs
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace slidesparse
