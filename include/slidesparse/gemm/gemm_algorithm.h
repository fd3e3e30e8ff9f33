// A GEMM algorithm choice as the tuning database stores it and the backends apply it, and the key
// a layer looks it up by. The default-constructed value means "the library's own default".
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "slidesparse/dtype.h"

namespace slidesparse {

enum class GemmBackend : uint8_t { kCublasLt, kCusparseLt };
std::string_view backend_name(GemmBackend backend);  // "cublaslt", "cusparselt"
GemmBackend parse_backend(std::string_view text);    // throws Error

struct GemmAlgorithm {
  bool is_default = true;  // true: library default (cuSPARSELt ALG_DEFAULT / cuBLASLt heuristic #0)
  // cuSPARSELt
  int alg_config_id = 0;
  int split_k = 1;       // 1: none; 2, 4, 8: split-K; -1: Segment-K (sm_90)
  int split_k_mode = 0;  // 0: the library's choice; 1: one kernel; 2: two kernels
  // cuBLASLt: the opaque cublasLtMatmulAlgo_t bytes returned by its heuristic
  std::array<uint64_t, 8> cublaslt_algo{};
  int cublaslt_heuristic_index = -1;  // which heuristic candidate it was (for reports)

  std::string describe() const;  // "default", "cfg 3 split-k 4", "heuristic #2"
  bool operator==(const GemmAlgorithm&) const = default;
};

void to_json(nlohmann::json& j, const GemmAlgorithm& a);
void from_json(const nlohmann::json& j, GemmAlgorithm& a);  // throws FormatError on bad fields

// What a layer looks a tuned algorithm up by. k is the GEMM's K (K' for the sparse backend).
struct GemmProblemKey {
  GemmBackend backend = GemmBackend::kCublasLt;
  DType dtype = DType::kI8;       // operand dtype
  DType out_dtype = DType::kI32;  // GEMM output dtype
  int64_t n = 0;
  int64_t k = 0;
  int64_t m = 0;
  // cuBLASLt FP8 fast accumulation: tuned apart from default accumulation (tables written before
  // this field hold default-accumulation entries only).
  bool fast_accum = false;
};

}  // namespace slidesparse
