// launch_pad_copy_bf16 (activation_pad.h): one thread per output element, grid-stride.
#include <algorithm>

#include "cuda/check.h"
#include "layer/activation_pad.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

__global__ void pad_copy_kernel(const uint16_t* x, int64_t m, int64_t k, int64_t ld_x,
                                uint16_t* out, int64_t m_pad, int64_t k_out) {
  const int64_t total = m_pad * k_out;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / k_out, c = i % k_out;
    out[i] = (r < m && c < k) ? x[r * ld_x + c] : uint16_t{0};
  }
}

}  // namespace

void launch_pad_copy_bf16(const void* x, int64_t m, int64_t k, int64_t ld_x, void* out,
                          int64_t m_pad, int64_t k_out, cudaStream_t stream) {
  const char* op = "pad_copy_bf16";
  SS_REQUIRE(x != nullptr && out != nullptr, op << ": null x or out");
  SS_REQUIRE(m >= 1 && k >= 1 && m_pad >= m && k_out >= k && ld_x >= k,
             op << ": bad shape m=" << m << " k=" << k << " ld_x=" << ld_x << " m_pad=" << m_pad
                << " k_out=" << k_out);
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((m_pad * k_out + kThreads - 1) / kThreads, 65535 * 16);
  pad_copy_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const uint16_t*>(x), m, k, ld_x, static_cast<uint16_t*>(out), m_pad, k_out);
  SS_CHECK_LAUNCH(op);
}

}  // namespace slidesparse
