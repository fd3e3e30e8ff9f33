// The one FlashInfer kernel configuration the engine uses, named once: bf16 q/kv/out, int32
// indices, causal mask, no position encoding, no soft cap / sliding window / ALiBi, fp32 QK
// accumulation, k and v with equal strides. The kernel bodies are instantiated in
// flashinfer_prefill_hd64.cu / _hd128.cu (one head dim per TU, CTA_TILE_Q 16, 64, 128: the
// tiles FA2DetermineCtaTileQ picks for head_dim < 256); batch_attention.cu only declares them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <flashinfer/attention/default_prefill_params.cuh>
#include <flashinfer/attention/mask.cuh>
#include <flashinfer/attention/variants.cuh>
#include <flashinfer/pos_enc.cuh>

namespace slidesparse::attention_detail {

using PrefillParams =
    flashinfer::BatchPrefillPagedParams<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16, int32_t>;
using PrefillVariant = flashinfer::DefaultAttention</*custom_mask=*/false, /*sliding_window=*/false,
                                                    /*logits_soft_cap=*/false, /*alibi=*/false>;

}  // namespace slidesparse::attention_detail

namespace flashinfer {

// Declared as FlashInfer's prefill.cuh defines it (its csrc/batch_prefill.cu does the same).
template <bool SAME_KV_STRIDES, uint32_t CTA_TILE_Q, uint32_t HEAD_DIM_QK, uint32_t HEAD_DIM_VO,
          PosEncodingMode POS_ENCODING_MODE, bool USE_FP16_QK_REDUCTION, MaskMode MASK_MODE,
          typename AttentionVariant, typename Params>
cudaError_t BatchPrefillWithPagedKVCacheDispatched(Params params, typename Params::DTypeO* tmp_v,
                                                   float* tmp_s, bool enable_pdl,
                                                   cudaStream_t stream);

}  // namespace flashinfer

// Explicit instantiation of one head dim (all three tiles), for the _hdNN.cu files.
#define SS_INSTANTIATE_FLASHINFER_PREFILL_TILE(HEAD_DIM, CTA_TILE_Q)                              \
  template cudaError_t flashinfer::BatchPrefillWithPagedKVCacheDispatched<                        \
      true, CTA_TILE_Q, HEAD_DIM, HEAD_DIM, flashinfer::PosEncodingMode::kNone, false,            \
      flashinfer::MaskMode::kCausal, slidesparse::attention_detail::PrefillVariant,               \
      slidesparse::attention_detail::PrefillParams>(slidesparse::attention_detail::PrefillParams, \
                                                    __nv_bfloat16*, float*, bool, cudaStream_t);
#define SS_INSTANTIATE_FLASHINFER_PREFILL(HEAD_DIM)    \
  SS_INSTANTIATE_FLASHINFER_PREFILL_TILE(HEAD_DIM, 16) \
  SS_INSTANTIATE_FLASHINFER_PREFILL_TILE(HEAD_DIM, 64) \
  SS_INSTANTIATE_FLASHINFER_PREFILL_TILE(HEAD_DIM, 128)
