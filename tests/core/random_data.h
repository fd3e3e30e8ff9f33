// Random test data for the core tests: seeded, never all zeros, with the shapes the tests sweep
// (K deliberately not a multiple of L or 32 among them).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "slidesparse/core/float_formats.h"

namespace slidesparse::test {

inline std::vector<float> random_floats(int64_t count, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<bf16_t> random_bf16(int64_t count, uint64_t seed) {
  std::vector<bf16_t> v;
  v.reserve(static_cast<size_t>(count));
  for (float f : random_floats(count, seed)) v.push_back(bf16_from_float(f));
  return v;
}

// Uniform integers in [lo, hi] (small values keep integer products exact in any arithmetic).
inline std::vector<int8_t> random_int8(int64_t count, uint64_t seed, int lo = -128, int hi = 127) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int8_t> v(static_cast<size_t>(count));
  for (auto& x : v) x = static_cast<int8_t>(dist(rng));
  return v;
}

struct Shape {
  int64_t m, n, k;
};

// K values: multiples of L and 32, neither, smaller than one block, and odd.
inline const std::vector<Shape>& test_shapes() {
  static const std::vector<Shape> shapes = {
      {1, 1, 1}, {3, 5, 7}, {4, 8, 64}, {5, 17, 100}, {7, 9, 333}, {16, 33, 480}, {2, 3, 1025},
  };
  return shapes;
}

inline const std::vector<int>& test_blocks() {
  static const std::vector<int> blocks = {4, 6, 8, 10, 12, 14, 16};
  return blocks;
}

}  // namespace slidesparse::test
