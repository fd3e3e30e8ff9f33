// Token embedding: one block per output row copies the token's table row with 16-byte vectors
// (element copies when the rows are not 16-byte aligned).
#include <limits>

#include "cuda/check.h"
#include "kernels/embedding.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

constexpr int kThreads = 256;
constexpr uint16_t kBf16NaN = 0x7FFF;

__global__ void embedding_kernel(const uint16_t* table, int64_t vocab, int64_t hidden,
                                 const int32_t* tokens, uint16_t* out, bool vec_ok,
                                 int* error_flag) {
  const int64_t row = blockIdx.x;
  const int32_t token = tokens[row];
  const bool valid = token >= 0 && token < vocab;
  if (!valid && error_flag != nullptr && threadIdx.x == 0) *error_flag = 1;
  const uint16_t* src = table + (valid ? static_cast<int64_t>(token) * hidden : 0);
  uint16_t* dst = out + row * hidden;
  if (vec_ok) {
    const int64_t n_vec = hidden / 8;
    const uint4 nan_vec = make_uint4(0x7FFF7FFFu, 0x7FFF7FFFu, 0x7FFF7FFFu, 0x7FFF7FFFu);
    for (int64_t j = threadIdx.x; j < n_vec; j += blockDim.x)
      reinterpret_cast<uint4*>(dst)[j] =
          valid ? __ldg(reinterpret_cast<const uint4*>(src) + j) : nan_vec;
  } else {
    for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) dst[j] = valid ? src[j] : kBf16NaN;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void launch_embedding(const void* table, int64_t vocab, int64_t hidden, const int32_t* tokens,
                      int64_t m, void* out, cudaStream_t stream, int* error_flag) {
  const char* op = "embedding";
  SS_REQUIRE(m >= 0, op << ": m must be >= 0 (got " << m << ")");
  if (m == 0) return;
  SS_REQUIRE(table != nullptr && tokens != nullptr && out != nullptr,
             op << ": table, tokens and out must not be null");
  SS_REQUIRE(vocab > 0 && hidden > 0,
             op << ": vocab and hidden must be > 0 (got " << vocab << ", " << hidden << ")");
  SS_REQUIRE(m <= std::numeric_limits<int32_t>::max(), op << ": m " << m << " is too large");
  const bool vec_ok = aligned16(table) && aligned16(out) && hidden % 8 == 0;
  embedding_kernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(
      static_cast<const uint16_t*>(table), vocab, hidden, tokens, static_cast<uint16_t*>(out),
      vec_ok, error_flag);
  SS_CHECK_LAUNCH(op);
}

}  // namespace slidesparse
