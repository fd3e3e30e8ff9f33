// The one FP8-capability rule (cuda/device_info.h) on made-up GPUs: E4M3 from cc 8.9, int8 and
// bf16 everywhere, and the reason names the GPU and its cc.
#include "cuda/device_info.h"

#include <gtest/gtest.h>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

GpuInfo gpu(const char* name, int major, int minor) {
  GpuInfo g;
  g.name = name;
  g.cc_major = major;
  g.cc_minor = minor;
  return g;
}

TEST(Fp8Rule, E4m3FromComputeCapability89) {
  EXPECT_FALSE(dtype_supported(DType::kFP8E4M3, gpu("NVIDIA A100-SXM4-80GB", 8, 0)));
  EXPECT_FALSE(dtype_supported(DType::kFP8E4M3, gpu("NVIDIA A10", 8, 6)));
  EXPECT_TRUE(dtype_supported(DType::kFP8E4M3, gpu("NVIDIA L40S", 8, 9)));
  EXPECT_TRUE(dtype_supported(DType::kFP8E4M3, gpu("NVIDIA H200", 9, 0)));
  EXPECT_TRUE(dtype_supported(DType::kFP8E4M3, gpu("NVIDIA B200", 10, 0)));
  for (DType d : {DType::kI8, DType::kBF16}) {
    EXPECT_TRUE(dtype_supported(d, gpu("NVIDIA A100-SXM4-80GB", 8, 0))) << dtype_name(d);
    EXPECT_EQ(dtype_unsupported_reason(d, gpu("NVIDIA T4", 7, 5)), "") << dtype_name(d);
  }
}

TEST(Fp8Rule, ReasonNamesTheGpuAndItsComputeCapability) {
  EXPECT_EQ(dtype_unsupported_reason(DType::kFP8E4M3, gpu("NVIDIA A100-SXM4-80GB", 8, 0)),
            "fp8 needs compute capability >= 8.9; NVIDIA A100-SXM4-80GB is cc 8.0");
  EXPECT_EQ(dtype_unsupported_reason(DType::kFP8E4M3, gpu("NVIDIA H200", 9, 0)), "");
}

TEST(Fp8Rule, RequireWithoutAGpuSaysSo) {
  if (gpu_available()) {
    const auto here = query_gpu();
    if (dtype_supported(DType::kFP8E4M3, *here))
      EXPECT_NO_THROW(require_dtype_supported(DType::kFP8E4M3));
    else
      EXPECT_THROW(require_dtype_supported(DType::kFP8E4M3), NotSupportedError);
    return;
  }
  try {
    require_dtype_supported(DType::kI8);
    FAIL() << "expected NotSupportedError without a GPU";
  } catch (const NotSupportedError& e) {
    EXPECT_STREQ(e.what(), "no CUDA GPU is available");
  }
}

}  // namespace
}  // namespace slidesparse

namespace slidesparse {
namespace {

TEST(ResultFolderName, OneSpellingForEveryResultFolder) {
  EXPECT_EQ(result_folder_name("H200", 90, "int8", "cuda13.0"), "H200_cc90_INT8_cuda13.0");
  EXPECT_EQ(result_folder_name("A100", 80, "FP8", "cuda12.8"), "A100_cc80_FP8_cuda12.8");
}

}  // namespace
}  // namespace slidesparse
