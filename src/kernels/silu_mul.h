// Launchers of the SwiGLU activation of the MLP: a = bf16(silu(g) * u) with silu(x) =
// x / (1 + exp(-x)) in float (CONTRACTS.md step 7), on the fused gate_up rows, plain (bf16 out)
// or fused with the per-token 8-bit quantisation (and lifting) that feeds the down projection's
// quantised-input entry. Both use one device function for a, so the fused kernel is bit-equal
// to launch_silu_mul then launch_quant(_slide). exp is the hardware exp2 (a few float ulps), so
// a differs from a libm reference by at most one bf16 ulp on rare elements.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"
#include "cuda/launch_config.h"

namespace slidesparse {

// gate_up: bf16 [m, ld], gate in columns [0, inter), up in [inter, 2*inter) (ld >= 2*inter).
// y: bf16 [m, inter], row stride inter.
void launch_silu_mul(const void* gate_up, int64_t ld, int64_t m, int64_t inter, void* y,
                     cudaStream_t stream);

// a as above, then quantised as launch_quant (slide == nullptr: out [m_pad, k_out], k_out >=
// inter) or launch_quant_slide (k_out == slide->k_slide(inter)); zero padding rows / columns and
// scales as there. config: as launch_quant's (resolve_quant_config(kBF16, inter, config)).
void launch_silu_mul_quant(const void* gate_up, int64_t ld, int64_t m, int64_t inter,
                           DType out_dtype, const Sparsity* slide, void* out, int64_t m_pad,
                           int64_t k_out, float* scale_per_token, cudaStream_t stream,
                           KernelLaunchConfig config = {});

}  // namespace slidesparse
