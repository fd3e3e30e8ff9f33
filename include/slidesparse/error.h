// Error types thrown at SlideSparse API boundaries. Every message says what failed and where
// (tensor, row, block, call); callers can catch NotSupportedError to turn it into an honest skip.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace slidesparse {

// Base of every SlideSparse error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The request is valid but this GPU / library / build cannot do it (FP8 below cc 8.9, a layout
// the library refuses, the sparse backend not compiled in). Benchmarks report these as skips.
class NotSupportedError : public Error {
 public:
  using Error::Error;
};

// A weight breaks the sparsity pattern it was declared to have.
class PatternError : public Error {
 public:
  PatternError(const std::string& what, int64_t row, int64_t block)
      : Error(what), row_(row), block_(block) {}
  int64_t row() const { return row_; }
  int64_t block() const { return block_; }

 private:
  int64_t row_;
  int64_t block_;
};

// A CUDA runtime / cuBLASLt / cuSPARSE(Lt) call failed (src/cuda/check.h names the call).
class CudaError : public Error {
 public:
  using Error::Error;
};

// cudaErrorMemoryAllocation and CUBLAS_STATUS_ALLOC_FAILED become this subclass, so callers can
// say "out of memory" plainly and free what they hold.
class OutOfMemoryError : public CudaError {
 public:
  using CudaError::CudaError;
};

// A file is malformed (safetensors header, config.json, tuning table, checkpoint metadata).
class FormatError : public Error {
 public:
  using Error::Error;
};

}  // namespace slidesparse

// Throws ErrorType with a message built by streaming `msg` when `cond` is false.
#define SS_REQUIRE_T(ErrorType, cond, msg)  \
  do {                                      \
    if (!(cond)) {                          \
      std::ostringstream ss_require_os_;    \
      ss_require_os_ << msg;                \
      throw ErrorType(ss_require_os_.str()); \
    }                                       \
  } while (0)

#define SS_REQUIRE(cond, msg) SS_REQUIRE_T(::slidesparse::Error, cond, msg)
