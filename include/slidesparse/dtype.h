// The one element-type enum of the project (tensors, GEMM operands, files). Names follow the
// command line ("int8", "fp8", "bf16"); safetensors names ("I8", "F8_E4M3") convert both ways.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace slidesparse {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kI8,
  kFP8E4M3,
  kI32,
};

// Command-line / report name: "fp32", "fp16", "bf16", "int8", "fp8", "int32".
std::string_view dtype_name(DType dtype);
// Bytes per element.
int64_t dtype_size(DType dtype);
// Accepts the names above and common aliases (f32, float32, f16, half, i8, e4m3, fp8_e4m3, i32,
// bfloat16), case-insensitive. Throws Error listing what is accepted.
DType parse_dtype(std::string_view text);
// safetensors header names: F32, F16, BF16, I8, F8_E4M3, I32.
std::string_view safetensors_dtype_name(DType dtype);
// Throws FormatError for names outside the six above.
DType parse_safetensors_dtype(std::string_view text);

}  // namespace slidesparse
