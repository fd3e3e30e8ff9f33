#include "cuda/check.h"

#include <cstdlib>
#include <sstream>

namespace slidesparse {
namespace {

std::string where(const char* expr, const char* file, int line) {
  std::ostringstream os;
  os << expr << " at " << file << ":" << line;
  return os.str();
}

}  // namespace

void check(cudaError_t status, const char* expr, const char* file, int line) {
  if (status == cudaSuccess) return;
  std::string msg = where(expr, file, line) + " failed: " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ")";
  if (status == cudaErrorMemoryAllocation) throw OutOfMemoryError("out of GPU memory: " + msg);
  throw CudaError(msg);
}

void check(cublasStatus_t status, const char* expr, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  std::string msg = where(expr, file, line) + " failed: " + cublasLtGetStatusName(status) + " (" +
                    cublasLtGetStatusString(status) + ")";
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemoryError("out of GPU memory: " + msg);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) throw NotSupportedError(msg);
  throw CudaError(msg);
}

void check(cusparseStatus_t status, const char* expr, const char* file, int line) {
  if (status == CUSPARSE_STATUS_SUCCESS) return;
  std::string msg = where(expr, file, line) + " failed: " + cusparseGetErrorName(status) + " (" +
                    cusparseGetErrorString(status) + ")";
  if (status == CUSPARSE_STATUS_ALLOC_FAILED || status == CUSPARSE_STATUS_INSUFFICIENT_RESOURCES)
    throw OutOfMemoryError("out of GPU memory: " + msg);
  if (status == CUSPARSE_STATUS_NOT_SUPPORTED) throw NotSupportedError(msg);
  throw CudaError(msg);
}

bool sync_check_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SLIDESPARSE_SYNC_CHECK");
    return v != nullptr && std::string(v) == "1";
  }();
  return enabled;
}

cudaError_t sticky_cuda_error(const std::function<cudaError_t()>& get_last_error,
                              const std::function<cudaError_t()>& synchronize) {
  get_last_error();  // a non-sticky error of the failed call
  if (synchronize() == cudaSuccess) return cudaSuccess;
  get_last_error();  // an asynchronous error that synchronising reported once
  return synchronize();
}

cudaError_t sticky_cuda_error() {
  return sticky_cuda_error([] { return cudaGetLastError(); },
                           [] { return cudaDeviceSynchronize(); });
}

void check_launch(const char* op, const char* file, int line) {
  check(cudaGetLastError(), op, file, line);
  if (sync_check_enabled()) check(cudaDeviceSynchronize(), op, file, line);
}

}  // namespace slidesparse
