#include "kernels/attention/kv_cache.h"

#include "slidesparse/error.h"

namespace slidesparse {

void validate_kv_cache_shape(const KvCacheShape& shape) {
  SS_REQUIRE(shape.num_pages >= 1, "KV cache: num_pages " << shape.num_pages << " must be >= 1");
  SS_REQUIRE(shape.page_size >= 1 && shape.page_size <= 1024,
             "KV cache: page_size " << shape.page_size << " must be in [1, 1024]");
  SS_REQUIRE(shape.num_kv_heads >= 1,
             "KV cache: num_kv_heads " << shape.num_kv_heads << " must be >= 1");
  SS_REQUIRE(shape.head_dim == 64 || shape.head_dim == 128,
             "KV cache: head_dim " << shape.head_dim << " is not supported (64 or 128)");
}

}  // namespace slidesparse
