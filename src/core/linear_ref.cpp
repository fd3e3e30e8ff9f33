// Reference linear layer y = x . W^T + b (DESIGN.md section 2), dense over K and through
// SlideSparse over K'. Compiled with -ffp-contract=off (see gemm_ref.cpp): the float results are
// the bit-exact targets of the GPU path.
#include "slidesparse/core/linear_ref.h"

#include <string>

#include "core/shape_check.h"
#include "core/weight_prep.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

void validate(const LinearRefProblem& p, const char* function) {
  detail::require_matrix(function, "x", p.x.size(), p.m, p.k);
  detail::require_matrix(function, "weight", p.weight.size(), p.n, p.k);
  detail::require_vector(function, "bias", p.bias.size(), p.n, true);
  detail::checked_elements(function, "y", p.m, p.n);
  SS_REQUIRE_T(NotSupportedError,
               p.compute == DType::kI8 || p.compute == DType::kFP8E4M3 || p.compute == DType::kBF16,
               function << ": compute dtype '" << dtype_name(p.compute)
                        << "' is not supported (int8, fp8 or bf16)");
}

// The shared tail of both paths: dequant, then round to bf16.
void finish(LinearRefResult& r, const LinearRefProblem& p) {
  if (p.compute == DType::kI8) {
    r.y = dequant_ref(std::span<const int32_t>(r.acc_int32), p.m, p.n, r.scale_per_token,
                      r.scale_per_channel, p.bias);
  } else {
    r.y = dequant_ref(std::span<const float>(r.acc_float), p.m, p.n, r.scale_per_token,
                      r.scale_per_channel, p.bias);
  }
  r.y_bf16 = to_bf16_vector(r.y);
}

}  // namespace

LinearRefResult linear_dense_ref(const LinearRefProblem& p) {
  validate(p, "linear_dense_ref");
  LinearRefResult r;
  WeightCodes w = quantize_weight(p.weight, p.n, p.k, p.compute);
  switch (p.compute) {
    case DType::kI8: {
      const auto qx = quantize_rows_int8(to_float_vector(p.x), p.m, p.k);
      r.acc_int32 = gemm_int8_ref(qx.codes, w.int8_codes, p.m, p.n, p.k);
      r.scale_per_token = qx.scales;
      break;
    }
    case DType::kFP8E4M3: {
      const auto qx = quantize_rows_e4m3(to_float_vector(p.x), p.m, p.k);
      r.acc_float = gemm_e4m3_ref(qx.codes, w.fp8_codes, p.m, p.n, p.k);
      r.scale_per_token = qx.scales;
      break;
    }
    default:  // kBF16: no quantisation, W rounded to bf16
      r.acc_float = gemm_bf16_ref(p.x, w.bf16_values, p.m, p.n, p.k);
      break;
  }
  r.scale_per_channel = std::move(w.scale_per_channel);
  finish(r, p);
  return r;
}

LinearRefResult linear_slide_ref(const LinearRefProblem& p, Sparsity sparsity) {
  validate(p, "linear_slide_ref");
  check_pattern(p.weight, p.n, p.k, sparsity, "linear_slide_ref: weight");
  const int64_t k_slide = sparsity.k_slide(p.k);
  LinearRefResult r;
  // Scales come from the un-lifted rows, so the slid codes are the dense ones, rearranged.
  WeightCodes w_slid = slide_weight(quantize_weight(p.weight, p.n, p.k, p.compute), sparsity);
  switch (p.compute) {
    case DType::kI8: {
      const auto qx = quantize_rows_int8(to_float_vector(p.x), p.m, p.k);
      const auto x_lift = lift_activations<int8_t>(qx.codes, p.m, p.k, sparsity);
      r.acc_int32 = gemm_int8_ref(x_lift, w_slid.int8_codes, p.m, p.n, k_slide);
      r.scale_per_token = qx.scales;
      break;
    }
    case DType::kFP8E4M3: {
      const auto qx = quantize_rows_e4m3(to_float_vector(p.x), p.m, p.k);
      const auto x_lift = lift_activations<fp8_e4m3_t>(qx.codes, p.m, p.k, sparsity);
      r.acc_float = gemm_e4m3_ref(x_lift, w_slid.fp8_codes, p.m, p.n, k_slide);
      r.scale_per_token = qx.scales;
      break;
    }
    default: {  // kBF16: lifting is a plain gather
      const auto x_lift = lift_activations<bf16_t>(p.x, p.m, p.k, sparsity);
      r.acc_float = gemm_bf16_ref(x_lift, w_slid.bf16_values, p.m, p.n, k_slide);
      break;
    }
  }
  r.scale_per_channel = std::move(w_slid.scale_per_channel);
  finish(r, p);
  return r;
}

}  // namespace slidesparse
