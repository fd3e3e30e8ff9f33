// What GPU and CUDA libraries this process sees: used by `slidesparse info`, by the tuning
// database's hardware key, by result folder names, and to refuse FP8 below cc 8.9.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "slidesparse/dtype.h"

namespace slidesparse {

struct GpuInfo {
  int device = 0;
  std::string name;  // "NVIDIA H100 80GB HBM3"
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  int64_t memory_bytes = 0;
  int64_t l2_bytes = 0;
  std::string short_name() const;  // "H100" style: name without vendor prefix and spaces
  int cc() const { return cc_major * 10 + cc_minor; }
};

struct LibraryVersions {
  int cuda_runtime = 0;  // cudaRuntimeGetVersion, e.g. 13000
  int cuda_driver = 0;   // cudaDriverGetVersion (0 without a driver)
  int64_t cublaslt = 0;  // cublasLtGetVersion, e.g. 130100
  int cusparselt = 0;    // runtime version when a GPU is present, else the header's; 0 if absent
  bool cusparselt_built = false;
  std::string toolchain() const;  // "cuda13.0" style tag for result folder names
};

// The one name of a results folder per GPU and precision, "H200_cc90_INT8_cuda13.0": the
// pipeline's, bench prefill / decode's and bench kernel's default folders all use it.
std::string result_folder_name(const std::string& gpu_short_name, int cc, std::string_view dtype,
                               const std::string& toolchain);

// The current device, or nullopt when no usable GPU is present (no driver, no device).
std::optional<GpuInfo> query_gpu();
bool gpu_available();
LibraryVersions query_library_versions();

// The one FP8-capability rule: E4M3 GEMMs need compute capability >= 8.9 (Ada, Hopper and
// later); int8 and bf16 run on every GPU this project builds for. Every check goes through these.
inline constexpr int kFp8MinComputeCapability = 89;
// Why `compute` cannot run on `gpu` ("fp8 needs compute capability >= 8.9; <GPU> is cc X.Y"), or
// an empty string when it can.
std::string dtype_unsupported_reason(DType compute, const GpuInfo& gpu);
bool dtype_supported(DType compute, const GpuInfo& gpu);
// Throws NotSupportedError with dtype_unsupported_reason() when `compute` cannot run on the
// current GPU ("no CUDA GPU is available" without one).
void require_dtype_supported(DType compute);

}  // namespace slidesparse
