#include "cuda/device_info.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cctype>
#include <sstream>

#include "cuda/check.h"
#ifdef SLIDESPARSE_HAVE_CUSPARSELT
#include <cusparseLt.h>
#endif

namespace slidesparse {

std::string GpuInfo::short_name() const {
  std::string s = name;
  const std::string prefix = "NVIDIA ";
  if (s.rfind(prefix, 0) == 0) s = s.substr(prefix.size());
  std::string out;
  for (char c : s) {
    if (c == ' ') break;  // "H100 80GB HBM3" -> "H100"
    out += c;
  }
  return out.empty() ? "GPU" : out;
}

std::string result_folder_name(const std::string& gpu_short_name, int cc, std::string_view dtype,
                               const std::string& toolchain) {
  std::string upper(dtype);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return gpu_short_name + "_cc" + std::to_string(cc) + "_" + upper + "_" + toolchain;
}

std::string LibraryVersions::toolchain() const {
  std::ostringstream os;
  os << "cuda" << cuda_runtime / 1000 << "." << (cuda_runtime % 1000) / 10;
  return os.str();
}

std::optional<GpuInfo> query_gpu() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the tolerated error so later checks do not trip on it
    return std::nullopt;
  }
  GpuInfo info;
  SS_CUDA_CHECK(cudaGetDevice(&info.device));
  cudaDeviceProp prop{};
  SS_CUDA_CHECK(cudaGetDeviceProperties(&prop, info.device));
  info.name = prop.name;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  info.l2_bytes = prop.l2CacheSize;
  return info;
}

bool gpu_available() {
  static const bool available = query_gpu().has_value();
  return available;
}

LibraryVersions query_library_versions() {
  LibraryVersions v;
  cudaRuntimeGetVersion(&v.cuda_runtime);
  if (cudaDriverGetVersion(&v.cuda_driver) != cudaSuccess) v.cuda_driver = 0;
  cudaGetLastError();
  v.cublaslt = static_cast<int64_t>(cublasLtGetVersion());
#ifdef SLIDESPARSE_HAVE_CUSPARSELT
  v.cusparselt_built = true;
  v.cusparselt = CUSPARSELT_VERSION;
  if (gpu_available()) {
    cusparseLtHandle_t handle;
    if (cusparseLtInit(&handle) == CUSPARSE_STATUS_SUCCESS) {
      int version = 0;
      if (cusparseLtGetVersion(&handle, &version) == CUSPARSE_STATUS_SUCCESS)
        v.cusparselt = version;
      cusparseLtDestroy(&handle);
    }
  }
#endif
  return v;
}

std::string dtype_unsupported_reason(DType compute, const GpuInfo& gpu) {
  if (compute != DType::kFP8E4M3 || gpu.cc() >= kFp8MinComputeCapability) return {};
  std::ostringstream os;
  os << "fp8 needs compute capability >= " << kFp8MinComputeCapability / 10 << "."
     << kFp8MinComputeCapability % 10 << "; " << gpu.name << " is cc " << gpu.cc_major << "."
     << gpu.cc_minor;
  return os.str();
}

bool dtype_supported(DType compute, const GpuInfo& gpu) {
  return dtype_unsupported_reason(compute, gpu).empty();
}

void require_dtype_supported(DType compute) {
  const auto gpu = query_gpu();
  if (!gpu) throw NotSupportedError("no CUDA GPU is available");
  if (std::string reason = dtype_unsupported_reason(compute, *gpu); !reason.empty())
    throw NotSupportedError(reason);
}

}  // namespace slidesparse
