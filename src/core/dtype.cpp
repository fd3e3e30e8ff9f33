#include "slidesparse/dtype.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "slidesparse/error.h"

namespace slidesparse {

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "fp32";
    case DType::kF16: return "fp16";
    case DType::kBF16: return "bf16";
    case DType::kI8: return "int8";
    case DType::kFP8E4M3: return "fp8";
    case DType::kI32: return "int32";
  }
  throw Error("dtype_name: unknown DType value " + std::to_string(static_cast<int>(dtype)));
}

int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI8: return 1;
    case DType::kFP8E4M3: return 1;
    case DType::kI32: return 4;
  }
  throw Error("dtype_size: unknown DType value " + std::to_string(static_cast<int>(dtype)));
}

DType parse_dtype(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "fp32" || s == "f32" || s == "float32" || s == "float") return DType::kF32;
  if (s == "fp16" || s == "f16" || s == "float16" || s == "half") return DType::kF16;
  if (s == "bf16" || s == "bfloat16") return DType::kBF16;
  if (s == "int8" || s == "i8") return DType::kI8;
  if (s == "fp8" || s == "e4m3" || s == "fp8_e4m3" || s == "f8_e4m3" || s == "fp8e4m3")
    return DType::kFP8E4M3;
  if (s == "int32" || s == "i32") return DType::kI32;
  throw Error("unknown dtype '" + std::string(text) +
              "': accepted are int8, fp8 (e4m3), bf16, fp16, fp32, int32");
}

std::string_view safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI8: return "I8";
    case DType::kFP8E4M3: return "F8_E4M3";
    case DType::kI32: return "I32";
  }
  throw Error("safetensors_dtype_name: unknown DType value " +
              std::to_string(static_cast<int>(dtype)));
}

DType parse_safetensors_dtype(std::string_view text) {
  if (text == "F32") return DType::kF32;
  if (text == "F16") return DType::kF16;
  if (text == "BF16") return DType::kBF16;
  if (text == "I8") return DType::kI8;
  if (text == "F8_E4M3") return DType::kFP8E4M3;
  if (text == "I32") return DType::kI32;
  throw FormatError("unsupported safetensors dtype '" + std::string(text) +
                    "': supported are F32, F16, BF16, I8, F8_E4M3, I32");
}

}  // namespace slidesparse
