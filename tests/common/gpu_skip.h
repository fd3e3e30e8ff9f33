// GPU tests call SS_SKIP_WITHOUT_GPU() first: with no GPU they are reported as skipped by
// GoogleTest and ctest (never as passed).
#pragma once

#include <gtest/gtest.h>

#include "cuda/device_info.h"

#define SS_SKIP_WITHOUT_GPU()                                              \
  do {                                                                     \
    if (!::slidesparse::gpu_available()) GTEST_SKIP() << "no CUDA GPU present"; \
  } while (0)
