// DType -> CUDA library enums, shared by the GEMM backends.
#pragma once

#include <library_types.h>

#include <string>

#include "slidesparse/dtype.h"
#include "slidesparse/error.h"

namespace slidesparse {

inline cudaDataType to_cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kI8:
      return CUDA_R_8I;
    case DType::kFP8E4M3:
      return CUDA_R_8F_E4M3;
    case DType::kI32:
      return CUDA_R_32I;
  }
  throw Error("to_cuda_data_type: unknown DType value " + std::to_string(static_cast<int>(dtype)));
}

}  // namespace slidesparse
