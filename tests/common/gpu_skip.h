// GPU tests call SS_SKIP_WITHOUT_GPU() first: with no GPU they are reported as skipped by
// GoogleTest and ctest (never as passed). FP8 tests call SS_SKIP_WITHOUT_FP8(), which also skips
// below cc 8.9 with the reason of the project's one FP8 rule (cuda/device_info.h).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "cuda/device_info.h"

#define SS_SKIP_WITHOUT_GPU()                                                   \
  do {                                                                          \
    if (!::slidesparse::gpu_available()) GTEST_SKIP() << "no CUDA GPU present"; \
  } while (0)

namespace slidesparse::test {

// The reason FP8 cannot run here (no GPU, or below cc 8.9), empty when it can.
inline std::string fp8_unavailable_reason() {
  const auto gpu = query_gpu();
  if (!gpu) return "no CUDA GPU present";
  return dtype_unsupported_reason(DType::kFP8E4M3, *gpu);
}
inline bool fp8_available() { return fp8_unavailable_reason().empty(); }

}  // namespace slidesparse::test

#define SS_SKIP_WITHOUT_FP8()                                                      \
  do {                                                                             \
    if (const std::string reason_ = ::slidesparse::test::fp8_unavailable_reason(); \
        !reason_.empty())                                                          \
      GTEST_SKIP() << reason_;                                                     \
  } while (0)
