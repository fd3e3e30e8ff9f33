// 64-bit indexing at full size: M = 65536 with Qwen2.5-7B's gate_up (N = 37888, K = 3584; M*N
// passes 2^31) and down (N = 3584, K = 18944; M*K passes 2^31). INT8 dense and 2:8 SlideSparse
// layers on the same pruned weight must give equal int32 accumulators and equal y everywhere
// (compared on the GPU), and sampled rows, the last one included, must match the CPU reference.
// Both layers share one scratch arena (plus a saved copy of the dense accumulator). Needs about
// 32 GB of device memory; skipped on smaller GPUs.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/gpu_skip.h"
#include "cuda/device_info.h"
#include "layer/layer_test_util.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/layer/linear.h"

namespace slidesparse {
namespace {

__global__ void fill_random_bf16(__nv_bfloat16* out, int64_t count, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t h = (static_cast<uint64_t>(i) + seed) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = __float2bfloat16(4.0f * u - 2.0f);
  }
}

// Counts positions where two row-major matrices (row strides ld_a, ld_b) differ.
template <class T>
__global__ void count_mismatches(const T* a, int64_t ld_a, const T* b, int64_t ld_b, int64_t rows,
                                 int64_t cols, unsigned long long* mismatches) {
  unsigned long long local = 0;
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    if (a[r * ld_a + c] != b[r * ld_b + c]) ++local;
  }
  if (local != 0) atomicAdd(mismatches, local);
}

template <class T>
unsigned long long mismatches(const void* a, int64_t ld_a, const void* b, int64_t ld_b,
                              int64_t rows, int64_t cols) {
  DeviceBuffer counter(sizeof(unsigned long long));
  SS_CUDA_CHECK(cudaMemset(counter.get(), 0, sizeof(unsigned long long)));
  count_mismatches<T><<<1024, 256>>>(static_cast<const T*>(a), ld_a, static_cast<const T*>(b), ld_b,
                                     rows, cols, counter.as<unsigned long long>());
  SS_CHECK_LAUNCH("count_mismatches");
  return test::to_host<unsigned long long>(counter.get(), 1)[0];
}

// int8 codes [n, k] already 2:8 (two zeros in every block of 8), and per-channel scales.
void make_pruned_codes(int64_t n, int64_t k, std::vector<int8_t>& codes,
                       std::vector<float>& scales) {
  std::mt19937_64 rng(77);
  codes.assign(static_cast<size_t>(n) * k, 0);
  for (size_t i = 0; i < codes.size(); i += 8) {
    const uint64_t r = rng();
    const int zero_a = static_cast<int>(r & 7),
              zero_b = (zero_a + 1 + static_cast<int>((r >> 3) % 7)) & 7;
    for (int j = 0; j < 8; ++j) {
      if (j == zero_a || j == zero_b) continue;
      int v = static_cast<int>((r >> (8 + 4 * j)) & 0xFF) - 127;
      codes[i + j] = static_cast<int8_t>(v == 0 ? 1 : v);
    }
  }
  scales.resize(n);
  for (int64_t i = 0; i < n; ++i) scales[i] = 1e-3f * (1.0f + static_cast<float>(i % 13));
}

void check_shape(int64_t m, int64_t n, int64_t k) {
  std::vector<int8_t> codes;
  std::vector<float> scales;
  make_pruned_codes(n, k, codes, scales);
  const HostWeight hw{DType::kI8, codes.data(), n, k, false, scales};
  const LinearOptions options{DType::kI8, Epilogue::kKernel, false, std::nullopt};
  Linear dense(hw, {}, options);
  SlideSparseLinear sparse(hw, Sparsity::parse("2:8"), {}, options);

  DeviceBuffer x(static_cast<size_t>(m) * k * 2);
  fill_random_bf16<<<2048, 256>>>(x.as<__nv_bfloat16>(), m * k, 12345);
  SS_CHECK_LAUNCH("fill_random_bf16");
  // One scratch arena for both layers, as a model shares one across its layers.
  dense.prepare(m);
  sparse.prepare(m);
  DeviceBuffer scratch =
      test::poisoned_scratch(std::max(dense.workspace_bytes(m), sparse.workspace_bytes(m)));
  const LinearScratch shared = test::view(scratch);
  DeviceBuffer y_dense = test::poisoned(static_cast<size_t>(m) * n * 2);
  DeviceBuffer y_sparse = test::poisoned(static_cast<size_t>(m) * n * 2);
  dense.forward(nullptr, x.get(), m, LinearOutput{y_dense.get()}, shared);
  // The sparse run reuses the arena: keep the dense accumulator aside first.
  const AccumulatorView acc_d_view = dense.accumulator(m, shared);
  DeviceBuffer acc_dense(static_cast<size_t>(m) * n * 4);
  SS_CUDA_CHECK(cudaMemcpy2D(acc_dense.get(), n * 4, acc_d_view.data, acc_d_view.ld * 4, n * 4, m,
                             cudaMemcpyDeviceToDevice));
  const AccumulatorView acc_d{acc_dense.get(), DType::kI32, m, n};
  sparse.forward(nullptr, x.get(), m, LinearOutput{y_sparse.get()}, shared);
  SS_CUDA_CHECK(cudaDeviceSynchronize());

  const AccumulatorView acc_s = sparse.accumulator(m, shared);
  EXPECT_EQ(mismatches<int32_t>(acc_d.data, acc_d.ld, acc_s.data, acc_s.ld, m, n), 0u)
      << "int32 accumulators, dense vs 2:8 sparse";
  EXPECT_EQ(mismatches<uint16_t>(y_dense.get(), n, y_sparse.get(), n, m, n), 0u)
      << "y, dense vs 2:8 sparse";

  // Sampled rows against the CPU: accumulator and y, bit for bit.
  for (int64_t row : {int64_t{0}, int64_t{1}, m / 2 + 3, m - 1}) {
    SCOPED_TRACE("row " + std::to_string(row));
    const auto x_row = test::to_host<bf16_t>(x.as<uint8_t>() + row * k * 2, k);
    const auto q = quantize_rows_int8(to_float_vector(x_row), 1, k);
    const auto acc_ref = gemm_int8_ref(q.codes, codes, 1, n, k);
    const auto acc_row =
        test::to_host<int32_t>(static_cast<const int32_t*>(acc_d.data) + row * acc_d.ld, n);
    EXPECT_EQ(acc_row, acc_ref);
    const auto y_ref =
        to_bf16_vector(dequant_ref(std::span<const int32_t>(acc_ref), 1, n, q.scales, scales, {}));
    const auto y_row = test::to_host<bf16_t>(y_sparse.as<uint8_t>() + row * n * 2, n);
    EXPECT_TRUE(y_row == y_ref) << "sparse y row vs reference";
  }
}

TEST(Linear64Bit, Qwen7BGateUpAndDownAtM65536) {
  SS_SKIP_WITHOUT_GPU();
  const auto gpu = query_gpu();
  ASSERT_GE(gpu->memory_bytes, int64_t{40} << 30)
      << "needs a GPU with 40 GB (~32 GB for the buffers); " << gpu->name << " has "
      << (gpu->memory_bytes >> 30) << " GB";
  const int64_t m = 65536;
  {
    SCOPED_TRACE("gate_up N=37888 K=3584");
    check_shape(m, 37888, 3584);
  }
  {
    SCOPED_TRACE("down N=3584 K=18944");
    check_shape(m, 3584, 18944);
  }
}

}  // namespace
}  // namespace slidesparse
