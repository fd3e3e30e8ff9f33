// BatchAttention: owned buffers, FlashInfer's host scheduler (PrefillPlan) and the dispatch to
// the instantiated kernels (flashinfer_prefill_hd*.cu). Workspace sizes are upper bounds derived
// from the scheduler's own rules (attention/scheduler.cuh, PrefillSplitQOKVIndptr and
// PrefillPlanImpl), so no plan() within max_batch / max_tokens can overflow them:
//   work items P <= max(S, ceil(T*g/16) + B), S = 2*SMs / Hkv (FlashInfer's split-KV grid cap);
//   int workspace ~ 13*P + 4*T + 8*B bytes; split-KV partial rows R <= max(ceil(S*128/g),
//   graph ? T + ceil(B*128/g) + 1 : 0), float workspace = Hq * R * (D + 1) * 4 bytes.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <flashinfer/attention/scheduler.cuh>
#include <iostream>
#include <limits>
#include <vector>

#include "cuda/check.h"
#include "kernels/attention/batch_attention.h"
#include "kernels/attention/flashinfer_prefill.cuh"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

using attention_detail::PrefillParams;
using attention_detail::PrefillVariant;

constexpr int64_t kAlign = 16;
int64_t align_up(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Layout of the owned index arrays (int32), each region 16-byte aligned.
struct IndexLayout {
  int64_t qo_indptr, kv_indptr, kv_last_page_len, kv_indices, bytes;
  IndexLayout(int64_t max_batch, int64_t max_pages) {
    qo_indptr = 0;
    kv_indptr = qo_indptr + align_up(4 * (max_batch + 1));
    kv_last_page_len = kv_indptr + align_up(4 * (max_batch + 1));
    kv_indices = kv_last_page_len + align_up(4 * max_batch);
    bytes = kv_indices + align_up(4 * std::max<int64_t>(max_pages, 1));
  }
};

int sm_count() {
  int device = 0, sms = 0;
  SS_CUDA_CHECK(cudaGetDevice(&device));
  SS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

template <uint32_t HEAD_DIM, uint32_t CTA_TILE_Q>
cudaError_t launch_prefill(const PrefillParams& params, __nv_bfloat16* tmp_v, float* tmp_s,
                           cudaStream_t stream) {
  return flashinfer::BatchPrefillWithPagedKVCacheDispatched<
      /*SAME_KV_STRIDES=*/true, CTA_TILE_Q, HEAD_DIM, HEAD_DIM, flashinfer::PosEncodingMode::kNone,
      /*USE_FP16_QK_REDUCTION=*/false, flashinfer::MaskMode::kCausal, PrefillVariant,
      PrefillParams>(params, tmp_v, tmp_s, /*enable_pdl=*/false, stream);
}

template <uint32_t HEAD_DIM>
cudaError_t launch_prefill_tile(int64_t cta_tile_q, const PrefillParams& params,
                                __nv_bfloat16* tmp_v, float* tmp_s, cudaStream_t stream) {
  switch (cta_tile_q) {
    case 16:
      return launch_prefill<HEAD_DIM, 16>(params, tmp_v, tmp_s, stream);
    case 64:
      return launch_prefill<HEAD_DIM, 64>(params, tmp_v, tmp_s, stream);
    case 128:
      return launch_prefill<HEAD_DIM, 128>(params, tmp_v, tmp_s, stream);
    default:
      SS_REQUIRE_T(NotSupportedError, false,
                   "BatchAttention: FlashInfer chose cta_tile_q " << cta_tile_q
                                                                  << ", which is not instantiated");
  }
  return cudaSuccess;
}

}  // namespace

void BatchAttention::PinnedDeleter::operator()(void* p) const {
  const cudaError_t status = cudaFreeHost(p);
  if (status != cudaSuccess)
    std::cerr << "slidesparse: cudaFreeHost failed: " << cudaGetErrorString(status) << "\n";
}

BatchAttention::BatchAttention(int num_q_heads, const KvCacheShape& shape, int max_batch,
                               int64_t max_tokens, bool for_cuda_graph)
    : num_q_heads_(num_q_heads),
      shape_(shape),
      max_batch_(max_batch),
      max_tokens_(max_tokens),
      max_kv_pages_(shape.num_pages),
      for_cuda_graph_(for_cuda_graph) {
  validate_kv_cache_shape(shape);
  SS_REQUIRE(num_q_heads >= 1 && num_q_heads % shape.num_kv_heads == 0,
             "BatchAttention: num_q_heads " << num_q_heads << " must be a positive multiple of "
                                            << "num_kv_heads " << shape.num_kv_heads);
  SS_REQUIRE(max_batch >= 1, "BatchAttention: max_batch " << max_batch << " must be >= 1");
  SS_REQUIRE(max_tokens >= 1 && max_tokens <= std::numeric_limits<int32_t>::max() / 16,
             "BatchAttention: max_tokens " << max_tokens << " out of range");
  SS_REQUIRE(!for_cuda_graph || max_tokens >= max_batch,
             "BatchAttention: for CUDA graphs max_tokens " << max_tokens << " must be >= max_batch "
                                                           << max_batch);
  // FlashInfer forms q and out row offsets as 32-bit unsigned products (prefill.cuh:
  // q_indptr[b] * q_stride_n, o_indptr[b] * Hq * D); page offsets are 64-bit (page.cuh).
  SS_REQUIRE_T(NotSupportedError,
               max_tokens * num_q_heads * shape.head_dim <= std::numeric_limits<uint32_t>::max(),
               "BatchAttention: max_tokens " << max_tokens << " x " << num_q_heads << " heads x "
                                             << shape.head_dim
                                             << " exceeds FlashInfer's 32-bit output offsets");
  SS_REQUIRE(shape.num_pages <= std::numeric_limits<int32_t>::max(),
             "BatchAttention: num_pages " << shape.num_pages << " exceeds int32 page indices");

  const int64_t group = num_q_heads / shape.num_kv_heads;
  const int64_t split_cap = 2 * int64_t(sm_count()) / shape.num_kv_heads;
  const int64_t work_items = std::max(split_cap, ceil_div(max_tokens * group, 16) + max_batch) + 1;
  const int64_t int_bytes = 3 * align_up(4 * work_items) + align_up(4 * (max_batch + 1)) +
                            2 * align_up(4) + align_up(4 * (max_tokens + 1)) +
                            align_up(work_items) + 4 * kAlign;
  int64_t partial_rows = ceil_div(split_cap * 128, group);
  if (for_cuda_graph)
    partial_rows =
        std::max(partial_rows, max_tokens + ceil_div(int64_t(max_batch) * 128, group) + 1);
  const int64_t float_bytes =
      int64_t(num_q_heads) * partial_rows * (shape.head_dim + 1) * 4 + 4 * kAlign;

  const IndexLayout layout(max_batch, max_kv_pages_);
  index_arrays_ = DeviceBuffer(layout.bytes);
  float_workspace_ = DeviceBuffer(float_bytes);
  int_workspace_ = DeviceBuffer(int_bytes);
  void* pinned = nullptr;
  SS_CUDA_CHECK(cudaMallocHost(&pinned, layout.bytes));
  index_staging_.reset(static_cast<std::byte*>(pinned));
  SS_CUDA_CHECK(cudaMallocHost(&pinned, int_bytes));
  int_staging_.reset(static_cast<std::byte*>(pinned));
}

BatchAttention::~BatchAttention() {
  if (copies_pending_) cudaEventSynchronize(copies_done_.get());  // pinned memory still in use
}

void BatchAttention::plan(std::span<const int32_t> qo_indptr, std::span<const int32_t> kv_indptr,
                          std::span<const int32_t> kv_indices,
                          std::span<const int32_t> kv_last_page_len, cudaStream_t stream) {
  SS_REQUIRE(qo_indptr.size() >= 2 && qo_indptr.size() - 1 <= size_t(max_batch_),
             "BatchAttention::plan: " << (qo_indptr.empty() ? 0 : qo_indptr.size() - 1)
                                      << " sequences, expected 1.." << max_batch_);
  const int batch = int(qo_indptr.size() - 1);
  SS_REQUIRE(kv_indptr.size() == size_t(batch) + 1 && kv_last_page_len.size() == size_t(batch),
             "BatchAttention::plan: kv_indptr has "
                 << kv_indptr.size() << " entries and "
                 << "kv_last_page_len " << kv_last_page_len.size() << ", expected " << batch + 1
                 << " and " << batch);
  SS_REQUIRE(qo_indptr[0] == 0 && kv_indptr[0] == 0,
             "BatchAttention::plan: qo_indptr[0] and kv_indptr[0] must be 0");
  const int page_size = shape_.page_size;
  for (int b = 0; b < batch; ++b) {
    const int64_t q_len = int64_t(qo_indptr[b + 1]) - qo_indptr[b];
    const int64_t pages = int64_t(kv_indptr[b + 1]) - kv_indptr[b];
    SS_REQUIRE(q_len >= 0 && pages >= 0, "BatchAttention::plan: sequence "
                                             << b << " has a decreasing qo_indptr or kv_indptr");
    const int32_t last = kv_last_page_len[b];
    SS_REQUIRE(pages == 0 || (last >= 1 && last <= page_size),
               "BatchAttention::plan: sequence " << b << " kv_last_page_len " << last
                                                 << " not in [1, " << page_size << "]");
    const int64_t kv_len = pages == 0 ? 0 : (pages - 1) * page_size + last;
    SS_REQUIRE(kv_len >= q_len, "BatchAttention::plan: sequence "
                                    << b << " has " << q_len << " queries but only " << kv_len
                                    << " KV tokens (its queries' k/v must be in the cache)");
  }
  const int64_t total_rows = qo_indptr[batch];
  SS_REQUIRE(total_rows <= max_tokens_,
             "BatchAttention::plan: " << total_rows << " query rows, more than max_tokens "
                                      << max_tokens_);
  SS_REQUIRE(
      kv_indices.size() == size_t(kv_indptr[batch]) && int64_t(kv_indices.size()) <= max_kv_pages_,
      "BatchAttention::plan: kv_indices has " << kv_indices.size() << " entries, kv_indptr["
                                              << batch << "] is " << kv_indptr[batch]
                                              << ", at most " << max_kv_pages_ << " pages");
  for (size_t i = 0; i < kv_indices.size(); ++i)
    SS_REQUIRE(kv_indices[i] >= 0 && kv_indices[i] < shape_.num_pages,
               "BatchAttention::plan: kv_indices[" << i << "] = " << kv_indices[i]
                                                   << " is not a page of the cache (0.."
                                                   << shape_.num_pages - 1 << ")");

  // The pinned staging buffers are read by the previous plan's copies until they finish.
  if (copies_pending_) {
    SS_CUDA_CHECK(cudaEventSynchronize(copies_done_.get()));
    copies_pending_ = false;
  }
  const IndexLayout layout(max_batch_, max_kv_pages_);
  std::byte* staging = index_staging_.get();
  std::memcpy(staging + layout.qo_indptr, qo_indptr.data(), qo_indptr.size_bytes());
  std::memcpy(staging + layout.kv_indptr, kv_indptr.data(), kv_indptr.size_bytes());
  std::memcpy(staging + layout.kv_last_page_len, kv_last_page_len.data(),
              kv_last_page_len.size_bytes());
  std::memcpy(staging + layout.kv_indices, kv_indices.data(), kv_indices.size_bytes());
  SS_CUDA_CHECK(cudaMemcpyAsync(index_arrays_.get(), staging,
                                layout.kv_indices + kv_indices.size_bytes(), cudaMemcpyHostToDevice,
                                stream));

  // Under graphs the work list must be a function of the batch size only (plus the query
  // pattern): plan all-L queries with FlashInfer's uniform_q_len hint, ragged ones for max_tokens.
  int64_t uniform_q_len = 0;
  if (for_cuda_graph_) {
    const int32_t first = qo_indptr[1] - qo_indptr[0];
    bool uniform = first > 0;
    for (int b = 1; b < batch && uniform; ++b) uniform = qo_indptr[b + 1] - qo_indptr[b] == first;
    if (uniform) uniform_q_len = first;
  }
  const int64_t rows_for_plan = for_cuda_graph_ && uniform_q_len == 0 ? max_tokens_ : total_rows;
  std::vector<int32_t> qo_host(qo_indptr.begin(), qo_indptr.end());
  std::vector<int32_t> kv_host(kv_indptr.begin(), kv_indptr.end());
  flashinfer::PrefillPlanInfo info;
  cudaError_t status = cudaSuccess;
  try {
    status = flashinfer::PrefillPlan<int32_t>(
        float_workspace_.get(), float_workspace_.bytes(), int_workspace_.get(), int_staging_.get(),
        int_workspace_.bytes(), info, qo_host.data(), kv_host.data(), uint32_t(rows_for_plan),
        uint32_t(batch), uint32_t(num_q_heads_), uint32_t(shape_.num_kv_heads),
        uint32_t(shape_.head_dim), uint32_t(shape_.head_dim), uint32_t(page_size), for_cuda_graph_,
        /*sizeof_dtype_o=*/2, /*window_left=*/-1, /*fixed_split_size=*/-1,
        /*disable_split_kv=*/false, /*num_colocated_ctas=*/0, uniform_q_len, stream,
        /*kv_dtype_bytes=*/2);
  } catch (const std::exception& e) {
    // The index copy above may be in flight: let the next plan wait for it.
    SS_CUDA_CHECK(cudaEventRecord(copies_done_.get(), stream));
    copies_pending_ = true;
    batch_size_ = 0;
    throw Error(std::string("BatchAttention::plan: FlashInfer PrefillPlan failed: ") + e.what());
  }
  SS_CUDA_CHECK(cudaEventRecord(copies_done_.get(), stream));
  copies_pending_ = true;
  if (status != cudaSuccess) {
    batch_size_ = 0;
    check(status, "flashinfer::PrefillPlan", __FILE__, __LINE__);
  }

  plan_ = Plan{info.padded_batch_size,
               info.total_num_rows,
               info.total_num_rows_offset,
               info.cta_tile_q,
               info.request_indices_offset,
               info.qo_tile_indices_offset,
               info.kv_tile_indices_offset,
               info.merge_indptr_offset,
               info.o_indptr_offset,
               info.kv_chunk_size_ptr_offset,
               info.v_offset,
               info.s_offset,
               info.block_valid_mask_offset,
               info.enable_cuda_graph,
               info.split_kv};
  batch_size_ = batch;
  total_rows_ = total_rows;
}

void BatchAttention::run(const void* q, int64_t ld_q, KvCacheLayer cache, void* out,
                         cudaStream_t stream) const {
  SS_REQUIRE(batch_size_ > 0, "BatchAttention::run: no successful plan()");
  const int64_t q_width = int64_t(num_q_heads_) * shape_.head_dim;
  SS_REQUIRE(ld_q >= q_width && ld_q <= std::numeric_limits<int32_t>::max(),
             "BatchAttention::run: ld_q " << ld_q << " must be in [" << q_width << ", 2^31)");
  SS_REQUIRE(q && out && cache.k && cache.v, "BatchAttention::run: null pointer argument");
  SS_REQUIRE(reinterpret_cast<uintptr_t>(q) % 16 == 0 && ld_q % 8 == 0 &&
                 reinterpret_cast<uintptr_t>(out) % 16 == 0 &&
                 reinterpret_cast<uintptr_t>(cache.k) % 16 == 0 &&
                 reinterpret_cast<uintptr_t>(cache.v) % 16 == 0,
             "BatchAttention::run: q, out and the cache must be 16-byte aligned, ld_q a multiple "
             "of 8 (FlashInfer loads 16-byte vectors)");
  const int64_t rows_bound = for_cuda_graph_ ? max_tokens_ : total_rows_;  // replays: any plan
  SS_REQUIRE_T(NotSupportedError, rows_bound * ld_q <= std::numeric_limits<uint32_t>::max(),
               "BatchAttention::run: " << rows_bound << " rows x ld_q " << ld_q
                                       << " exceeds FlashInfer's 32-bit q offsets");
  if (!for_cuda_graph_ && total_rows_ == 0) return;

  using DT = __nv_bfloat16;
  const IndexLayout layout(max_batch_, max_kv_pages_);
  std::byte* indices = static_cast<std::byte*>(index_arrays_.get());
  auto* qo_indptr = reinterpret_cast<int32_t*>(indices + layout.qo_indptr);
  auto* kv_indptr = reinterpret_cast<int32_t*>(indices + layout.kv_indptr);
  auto* kv_last_page_len = reinterpret_cast<int32_t*>(indices + layout.kv_last_page_len);
  auto* kv_indices = reinterpret_cast<int32_t*>(indices + layout.kv_indices);

  PrefillParams params;
  params.q = static_cast<DT*>(const_cast<void*>(q));
  params.paged_kv = flashinfer::paged_kv_t<DT, int32_t>(
      uint32_t(shape_.num_kv_heads), uint32_t(shape_.page_size), uint32_t(shape_.head_dim),
      uint32_t(batch_size_), flashinfer::QKVLayout::kNHD, static_cast<DT*>(cache.k),
      static_cast<DT*>(cache.v), kv_indices, kv_indptr, kv_last_page_len);
  params.q_indptr = qo_indptr;
  params.o = static_cast<DT*>(out);
  params.lse = nullptr;
  params.num_qo_heads = uint32_t(num_q_heads_);
  params.group_size = flashinfer::uint_fastdiv(uint32_t(num_q_heads_ / shape_.num_kv_heads));
  params.q_stride_n = int32_t(ld_q);
  params.q_stride_h = shape_.head_dim;
  params.window_left = -1;
  params.logits_soft_cap = 0.0f;
  params.sm_scale = 1.0f / std::sqrt(float(shape_.head_dim));
  params.rope_rcp_scale = 1.0f;
  params.rope_rcp_theta = 1.0f;

  void* int_base = int_workspace_.get();
  void* float_base = float_workspace_.get();
  using flashinfer::GetPtrFromBaseOffset;
  params.request_indices = GetPtrFromBaseOffset<int32_t>(int_base, plan_.request_indices_offset);
  params.qo_tile_indices = GetPtrFromBaseOffset<int32_t>(int_base, plan_.qo_tile_indices_offset);
  params.kv_tile_indices = GetPtrFromBaseOffset<int32_t>(int_base, plan_.kv_tile_indices_offset);
  params.o_indptr = GetPtrFromBaseOffset<int32_t>(int_base, plan_.o_indptr_offset);
  params.kv_chunk_size_ptr =
      GetPtrFromBaseOffset<int32_t>(int_base, plan_.kv_chunk_size_ptr_offset);
  DT* tmp_v = nullptr;
  float* tmp_s = nullptr;
  if (plan_.split_kv) {
    params.merge_indptr = GetPtrFromBaseOffset<int32_t>(int_base, plan_.merge_indptr_offset);
    tmp_v = GetPtrFromBaseOffset<DT>(float_base, plan_.v_offset);
    tmp_s = GetPtrFromBaseOffset<float>(float_base, plan_.s_offset);
  }
  params.padded_batch_size = uint32_t(plan_.padded_batch_size);
  params.max_total_num_rows = uint32_t(plan_.total_num_rows);
  if (plan_.enable_cuda_graph) {
    params.block_valid_mask = GetPtrFromBaseOffset<bool>(int_base, plan_.block_valid_mask_offset);
    params.total_num_rows = GetPtrFromBaseOffset<uint32_t>(int_base, plan_.total_num_rows_offset);
  }

  cudaError_t status = cudaSuccess;
  try {
    status = shape_.head_dim == 64
                 ? launch_prefill_tile<64>(plan_.cta_tile_q, params, tmp_v, tmp_s, stream)
                 : launch_prefill_tile<128>(plan_.cta_tile_q, params, tmp_v, tmp_s, stream);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string("BatchAttention::run: FlashInfer: ") + e.what());
  }
  check(status, "flashinfer::BatchPrefillWithPagedKVCacheDispatched", __FILE__, __LINE__);
  SS_CHECK_LAUNCH("flashinfer batch prefill");
}

}  // namespace slidesparse
