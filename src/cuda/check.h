// One check for every CUDA-side status type: check(status, "expr", __FILE__, __LINE__) throws
// slidesparse::CudaError naming the call, the status and the place. SS_CUDA_CHECK(expr) wraps it;
// SS_CHECK_LAUNCH("op") checks cudaGetLastError() after a kernel launch (and synchronises when
// SLIDESPARSE_SYNC_CHECK=1 is set in the environment, to pin asynchronous faults on the op).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include <functional>
#include <string>

#include "slidesparse/error.h"

namespace slidesparse {

void check(cudaError_t status, const char* expr, const char* file, int line);
void check(cublasStatus_t status, const char* expr, const char* file, int line);
void check(cusparseStatus_t status, const char* expr, const char* file, int line);
void check_launch(const char* op, const char* file, int line);
bool sync_check_enabled();

// After a caught error, whether the CUDA context still works. A sticky fault (an illegal address,
// a kernel that trapped) makes every later call of the process fail; any other error is cleared
// once read. Reads and clears the last error, synchronises the device, and does both once more
// when the first synchronisation fails: cudaSuccess when the context works, else the error that
// persists.
cudaError_t sticky_cuda_error();
// The same decision on given probes (cudaGetLastError, cudaDeviceSynchronize), for tests.
cudaError_t sticky_cuda_error(const std::function<cudaError_t()>& get_last_error,
                              const std::function<cudaError_t()>& synchronize);

}  // namespace slidesparse

#define SS_CUDA_CHECK(expr) ::slidesparse::check((expr), #expr, __FILE__, __LINE__)
#define SS_CHECK_LAUNCH(op) ::slidesparse::check_launch((op), __FILE__, __LINE__)
