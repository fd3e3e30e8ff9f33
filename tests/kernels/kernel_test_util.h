// Helpers shared by the kernel tests: fresh random inputs in every x dtype (with the values the
// CPU reference sees), device buffers poisoned with 0x5A and followed by a sentinel region that
// must come back unchanged, and a byte comparison that names the first mismatches.
#pragma once

#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/resources.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/dtype.h"

namespace slidesparse::test {

inline constexpr uint8_t kPoison = 0x5A;
inline constexpr uint8_t kSentinel = 0xC3;
inline constexpr size_t kSentinelBytes = 256;

// A new seed per call (tests print it, so a failure can be replayed by hand).
inline uint64_t fresh_seed() {
  static std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

// `bytes` poisoned bytes followed by kSentinelBytes of sentinel, on the device.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t bytes) : bytes_(bytes), buffer_(bytes + kSentinelBytes) {
    poison();
  }
  void poison() {
    SS_CUDA_CHECK(cudaMemset(buffer_.get(), kPoison, bytes_));
    SS_CUDA_CHECK(
        cudaMemset(static_cast<uint8_t*>(buffer_.get()) + bytes_, kSentinel, kSentinelBytes));
    // cudaMemset may still be running when it returns, and kernels on non-blocking streams do
    // not wait for the legacy stream: finish the poison before anything is launched.
    SS_CUDA_CHECK(cudaDeviceSynchronize());
  }
  void* get() const { return buffer_.get(); }
  template <class T>
  T* as() const {
    return static_cast<T*>(buffer_.get());
  }
  size_t bytes() const { return bytes_; }
  std::vector<uint8_t> download() const { return download_range(0, bytes_); }
  std::vector<uint8_t> download_range(size_t offset, size_t count) const {
    std::vector<uint8_t> host(count);
    SS_CUDA_CHECK(cudaMemcpy(host.data(), static_cast<const uint8_t*>(buffer_.get()) + offset,
                             count, cudaMemcpyDeviceToHost));
    return host;
  }
  bool sentinel_intact() const {
    for (uint8_t b : download_range(bytes_, kSentinelBytes))
      if (b != kSentinel) return false;
    return true;
  }

 private:
  size_t bytes_;
  DeviceBuffer buffer_;
};

// Counts differing bytes between got and want (same size); records the first few as failures
// with (row, byte column) for rows of `row_bytes`.
inline int64_t expect_bytes_equal(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                                  int64_t row_bytes, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  int64_t mismatches = 0;
  const size_t n = std::min(got.size(), want.size());
  for (size_t i = 0; i < n; ++i) {
    if (got[i] == want[i]) continue;
    if (++mismatches <= 5) {
      ADD_FAILURE() << what << ": byte mismatch at row " << static_cast<int64_t>(i) / row_bytes
                    << ", byte " << static_cast<int64_t>(i) % row_bytes << ": got 0x" << std::hex
                    << int(got[i]) << ", want 0x" << int(want[i]) << std::dec;
    }
  }
  if (mismatches > 5) ADD_FAILURE() << what << ": " << mismatches << " mismatching bytes in all";
  return mismatches;
}

template <class T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

// An activation matrix x [m, k] with row stride ld_x in `dtype` (bf16, fp16 or fp32), as raw
// bytes for the device plus the exact float values and 16-bit patterns the references take.
struct HostActivations {
  DType dtype;
  int64_t m = 0, k = 0, ld_x = 0;
  std::vector<uint8_t> bytes;  // [m, ld_x] in dtype
  std::vector<float> values;   // [m, k], exactly the dtype values
  std::vector<bf16_t> bits16;  // [m, k] raw 16-bit patterns (bf16/fp16 only)
};

inline uint16_t half_bits(float v) { return __half_as_ushort(__float2half_rn(v)); }
inline float half_value(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// Normal values with a random magnitude per row (10^-3 ... 10^3), a few outliers, one all-zero
// row when m >= 3 (the kMinAbsMax path), and huge values in the stride padding [k, ld_x) that
// would change the scale if a kernel read them.
inline HostActivations random_activations(DType dtype, int64_t m, int64_t k, int64_t ld_x,
                                          uint64_t seed) {
  HostActivations x{dtype, m, k, ld_x, {}, {}, {}};
  const size_t elem = static_cast<size_t>(dtype_size(dtype));
  x.bytes.resize(static_cast<size_t>(m * ld_x) * elem);
  x.values.resize(static_cast<size_t>(m * k));
  x.bits16.resize(static_cast<size_t>(m * k));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-3.0f, 3.0f);
  std::uniform_int_distribution<int> outlier(0, 63);
  for (int64_t r = 0; r < m; ++r) {
    const float magnitude = std::pow(10.0f, exponent(rng));
    const bool zero_row = m >= 3 && r == 2;
    for (int64_t c = 0; c < ld_x; ++c) {
      const bool pad = c >= k;
      float v = zero_row ? 0.0f : normal(rng) * magnitude * (outlier(rng) == 0 ? 20.0f : 1.0f);
      uint8_t* dst = x.bytes.data() + static_cast<size_t>(r * ld_x + c) * elem;
      float exact = 0.0f;
      uint16_t bits = 0;
      switch (dtype) {
        case DType::kBF16:
          bits = pad ? uint16_t{0x7F00} : bf16_from_float(v).bits;
          exact = to_float(bf16_t{bits});
          std::memcpy(dst, &bits, 2);
          break;
        case DType::kF16:
          bits = pad ? uint16_t{0x7BFF} : half_bits(v);
          exact = half_value(bits);
          std::memcpy(dst, &bits, 2);
          break;
        default:
          exact = pad ? 1e30f : v;
          std::memcpy(dst, &exact, 4);
          break;
      }
      if (pad) continue;
      x.values[static_cast<size_t>(r * k + c)] = exact;
      x.bits16[static_cast<size_t>(r * k + c)] = bf16_t{bits};
    }
  }
  return x;
}

// Uploads host bytes to a fresh device buffer.
inline DeviceBuffer upload(const std::vector<uint8_t>& bytes) {
  DeviceBuffer buffer(std::max<size_t>(bytes.size(), 1));
  SS_CUDA_CHECK(cudaMemcpy(buffer.get(), bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
  SS_CUDA_CHECK(cudaDeviceSynchronize());  // visible to kernels on non-blocking streams too
  return buffer;
}

}  // namespace slidesparse::test
