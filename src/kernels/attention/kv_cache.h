// The paged KV cache of one decoder layer as the attention kernels see it: k and v are two
// arrays of bf16 [num_pages, page_size, num_kv_heads, head_dim] (NHD, contiguous). Token slot
// s = page * page_size + offset holds one row of num_kv_heads * head_dim elements, so element
// (slot, head, d) of k sits at ((slot * num_kv_heads + head) * head_dim + d), in 64 bits.
#pragma once

#include <cstdint>

namespace slidesparse {

struct KvCacheLayer {
  void* k = nullptr;  // device
  void* v = nullptr;  // device
};

struct KvCacheShape {
  int64_t num_pages = 0;
  int page_size = 16;
  int num_kv_heads = 0;
  int head_dim = 0;

  int64_t num_slots() const { return num_pages * page_size; }
  int64_t row_elems() const { return int64_t(num_kv_heads) * head_dim; }
  // Bytes of one of k / v (bf16).
  int64_t bytes_per_array() const { return num_slots() * row_elems() * 2; }
};

// Throws Error naming the bad field (num_pages >= 1, page_size 1..1024, num_kv_heads >= 1,
// head_dim 64 or 128).
void validate_kv_cache_shape(const KvCacheShape& shape);

}  // namespace slidesparse
