// FlashInfer's paged batch-prefill kernel for head_dim 128 (see flashinfer_prefill.cuh).
#include <flashinfer/attention/prefill.cuh>

#include "kernels/attention/flashinfer_prefill.cuh"

SS_INSTANTIATE_FLASHINFER_PREFILL(128)
