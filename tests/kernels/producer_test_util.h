// Helpers of the norm / activation kernel tests: random bf16 matrices (never zero), device
// upload / download of bf16 vectors, and a bf16 comparison that counts mismatches and their
// size in bf16 ulps.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/resources.h"
#include "kernels/kernel_test_util.h"
#include "slidesparse/core/float_formats.h"

namespace slidesparse::test {

// Normal values times a random magnitude per row (10^-2 ... 10^2); no exact zeros.
inline std::vector<bf16_t> random_bf16_rows(int64_t rows, int64_t cols, uint64_t seed,
                                            float min_exp = -2.0f, float max_exp = 2.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(min_exp, max_exp);
  std::vector<bf16_t> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float magnitude = std::pow(10.0f, exponent(rng));
    for (int64_t c = 0; c < cols; ++c) {
      float f = normal(rng) * magnitude;
      if (f == 0.0f) f = magnitude;
      v[static_cast<size_t>(r * cols + c)] = bf16_from_float(f);
    }
  }
  return v;
}

inline DeviceBuffer upload_bf16(const std::vector<bf16_t>& v) { return upload(as_bytes(v)); }

inline std::vector<bf16_t> bytes_to_bf16(const std::vector<uint8_t>& bytes) {
  std::vector<bf16_t> v(bytes.size() / 2);
  std::memcpy(v.data(), bytes.data(), v.size() * 2);
  return v;
}

// Distance in bf16 ulps of two finite values of one sign (large when signs differ).
inline int64_t bf16_ulps(bf16_t a, bf16_t b) {
  auto ordered = [](bf16_t x) {
    const int32_t bits = x.bits;
    return (bits & 0x8000) ? -(bits & 0x7FFF) : bits;
  };
  return std::llabs(static_cast<long long>(ordered(a)) - ordered(b));
}

struct Bf16Diff {
  int64_t mismatches = 0;
  int64_t max_ulps = 0;
};

// Compares got and want element by element (rows of `cols`); records the first mismatches.
inline Bf16Diff compare_bf16(const std::vector<bf16_t>& got, const std::vector<bf16_t>& want,
                             int64_t cols, const std::string& what, bool report) {
  Bf16Diff d;
  EXPECT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (got[i].bits == want[i].bits) continue;
    ++d.mismatches;
    d.max_ulps = std::max(d.max_ulps, bf16_ulps(got[i], want[i]));
    if (report && d.mismatches <= 5)
      ADD_FAILURE() << what << ": mismatch at row " << static_cast<int64_t>(i) / cols << ", col "
                    << static_cast<int64_t>(i) % cols << ": got 0x" << std::hex << got[i].bits
                    << ", want 0x" << want[i].bits << std::dec;
  }
  return d;
}

}  // namespace slidesparse::test
