// Helpers shared by the layer tests: device round trips, poisoned outputs and scratch, random
// data, and the error measures the tests state their tolerances in.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cuda/resources.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/layer/linear.h"

namespace slidesparse::test {

template <class T>
DeviceBuffer to_device(const std::vector<T>& v) {
  DeviceBuffer b(std::max<size_t>(v.size() * sizeof(T), 1));
  SS_CUDA_CHECK(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return b;
}

template <class T>
std::vector<T> to_host(const void* data, size_t count) {
  std::vector<T> v(count);
  SS_CUDA_CHECK(cudaMemcpy(v.data(), data, count * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

// Rows [0, rows) of a [*, ld] device matrix, packed to [rows, cols].
template <class T>
std::vector<T> rows_to_host(const void* data, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<T> v(static_cast<size_t>(rows) * cols);
  SS_CUDA_CHECK(cudaMemcpy2D(v.data(), cols * sizeof(T), data, ld * sizeof(T), cols * sizeof(T),
                             rows, cudaMemcpyDeviceToHost));
  return v;
}

// 0xFF bytes: bf16 NaN, int32 -1: an element the GPU did not write cannot pass.
inline DeviceBuffer poisoned(size_t bytes) {
  DeviceBuffer b(bytes);
  SS_CUDA_CHECK(cudaMemset(b.get(), 0xFF, bytes));
  return b;
}

// A scratch arena of `bytes` poisoned with 0xFF: padding a layer fails to write cannot pass.
inline DeviceBuffer poisoned_scratch(size_t bytes) { return poisoned(std::max<size_t>(bytes, 1)); }
// The scratch `layer` needs up to m_max (prepared), poisoned.
inline DeviceBuffer scratch_for(const LinearLayer& layer, int64_t m_max) {
  return poisoned_scratch(layer.workspace_bytes(m_max));
}
inline LinearScratch view(const DeviceBuffer& b) { return LinearScratch{b.get(), b.bytes()}; }

inline std::vector<float> random_normal(size_t count, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(count);
  for (auto& e : v) e = dist(rng);
  return v;
}

struct ErrorStats {
  double rel = 0;      // ||out - ref|| / ||ref||
  double max_abs = 0;  // max |out - ref|
  double max_ref = 0;  // max |ref|
  int64_t nan = 0;     // NaN / Inf in out
};

inline ErrorStats error_stats(const std::vector<float>& out, const std::vector<float>& ref) {
  ErrorStats s;
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      ++s.nan;
      continue;
    }
    const double e = static_cast<double>(out[i]) - ref[i];
    num += e * e;
    den += static_cast<double>(ref[i]) * ref[i];
    s.max_abs = std::max(s.max_abs, std::abs(e));
    s.max_ref = std::max(s.max_ref, std::abs(static_cast<double>(ref[i])));
  }
  s.rel = std::sqrt(num / std::max(den, 1e-30));
  return s;
}

inline std::vector<float> bf16_to_float(const std::vector<bf16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

}  // namespace slidesparse::test
