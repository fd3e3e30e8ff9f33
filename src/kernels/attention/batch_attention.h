// Causal GQA attention over a paged KV cache for a ragged batch, on FlashInfer's batch-prefill
// kernel (FA2 tensor-core path, bf16, NHD, no position encoding: RoPE is applied before, by
// launch_rope_kv_write). Decode is the same call with one query per sequence, so every GQA group
// size works (FlashInfer's CUDA-core decode kernel only takes 1,2,3,4,6,8,16; Qwen2.5 has 5, 7).
//
// plan() runs on the host, never inside graph capture: it copies the index arrays into device
// buffers this object owns (fixed addresses) and runs FlashInfer's scheduler into the owned
// workspaces. run() only launches (no allocation, sync or host bookkeeping), so it can be
// captured. With for_cuda_graph, the scheduler pads its work list to a size fixed by the batch
// size (and the query-length pattern), so a graph captured after plan(b sequences) stays valid
// after any later plan() of b sequences whose queries are again all of one length L (decode:
// L = 1), or again ragged; plan() the same batch size before each replay.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "cuda/resources.h"
#include "kernels/attention/kv_cache.h"

namespace slidesparse {

class BatchAttention {
 public:
  // num_q_heads: a multiple of shape.num_kv_heads. max_batch: most sequences in one plan;
  // max_tokens: most query rows in one plan (sum of query lengths). Allocates every buffer here.
  BatchAttention(int num_q_heads, const KvCacheShape& shape, int max_batch, int64_t max_tokens,
                 bool for_cuda_graph);
  ~BatchAttention();
  BatchAttention(const BatchAttention&) = delete;
  BatchAttention& operator=(const BatchAttention&) = delete;

  // Per sequence b: its queries are rows [qo_indptr[b], qo_indptr[b+1]) of q / out, its KV is the
  // pages kv_indices[kv_indptr[b] .. kv_indptr[b+1]), the last of them holding
  // kv_last_page_len[b] (1..page_size) valid slots. The queries are the sequence's last tokens
  // (causal; their k/v are already in the cache), so kv length >= query length >= 0.
  // Throws Error on inconsistent arrays. Blocks until the previous plan's copies are done.
  void plan(std::span<const int32_t> qo_indptr, std::span<const int32_t> kv_indptr,
            std::span<const int32_t> kv_indices, std::span<const int32_t> kv_last_page_len,
            cudaStream_t stream);

  // q: bf16 rows (row stride ld_q elements >= Hq * D, heads contiguous: the q part of the qkv
  // rows); out: bf16 [T, Hq * D], T = qo_indptr[batch]. Needs a plan(); capturable.
  // FlashInfer's q/out row offsets are 32-bit: rows * ld_q and max_tokens * Hq * D must stay
  // below 2^32 elements (NotSupportedError; 65536 tokens of Qwen2.5-72B's qkv use 0.7e9).
  void run(const void* q, int64_t ld_q, KvCacheLayer cache, void* out, cudaStream_t stream) const;

  // The FlashInfer workspaces: float (split-KV partial outputs) and int (the work list).
  size_t float_workspace_bytes() const { return float_workspace_.bytes(); }
  size_t int_workspace_bytes() const { return int_workspace_.bytes(); }
  int batch_size() const { return batch_size_; }  // of the last plan (0 before)

  // FlashInfer's plan, kept without its headers (the fields its run needs).
  struct Plan {
    int64_t padded_batch_size = 0, total_num_rows = 0, total_num_rows_offset = 0, cta_tile_q = 0;
    int64_t request_indices_offset = 0, qo_tile_indices_offset = 0, kv_tile_indices_offset = 0;
    int64_t merge_indptr_offset = 0, o_indptr_offset = 0, kv_chunk_size_ptr_offset = 0;
    int64_t v_offset = 0, s_offset = 0, block_valid_mask_offset = 0;
    bool enable_cuda_graph = false, split_kv = false;
  };

 private:
  struct PinnedDeleter {
    void operator()(void* p) const;
  };
  using PinnedBuffer = std::unique_ptr<std::byte, PinnedDeleter>;

  int num_q_heads_;
  KvCacheShape shape_;
  int max_batch_;
  int64_t max_tokens_;
  int64_t max_kv_pages_;
  bool for_cuda_graph_;

  // Owned device index arrays, one allocation: qo_indptr [max_batch+1], kv_indptr [max_batch+1],
  // kv_last_page_len [max_batch], kv_indices [max_kv_pages]; staged through pinned memory.
  DeviceBuffer index_arrays_;
  PinnedBuffer index_staging_;
  DeviceBuffer float_workspace_;
  DeviceBuffer int_workspace_;
  PinnedBuffer int_staging_;  // FlashInfer's page-locked copy of the int workspace
  CudaEvent copies_done_;
  bool copies_pending_ = false;

  Plan plan_;
  int batch_size_ = 0;
  int64_t total_rows_ = 0;
};

}  // namespace slidesparse
