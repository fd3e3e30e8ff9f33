// sticky_cuda_error's decision on scripted probes: an error that clears once read lets a run go
// on, one that every synchronisation repeats (a dead context) is returned. No GPU needed.
#include <gtest/gtest.h>

#include <deque>

#include "cuda/check.h"

namespace slidesparse {
namespace {

// Probes that answer from a script (then cudaSuccess), counting their calls.
struct ScriptedProbes {
  std::deque<cudaError_t> last_errors, syncs;
  int last_error_calls = 0, sync_calls = 0;
  cudaError_t decide() {
    return sticky_cuda_error(
        [&] {
          ++last_error_calls;
          return next(last_errors);
        },
        [&] {
          ++sync_calls;
          return next(syncs);
        });
  }
  static cudaError_t next(std::deque<cudaError_t>& q) {
    if (q.empty()) return cudaSuccess;
    const cudaError_t e = q.front();
    q.pop_front();
    return e;
  }
};

TEST(StickyCudaError, ACallThatFailedAloneLeavesAWorkingContext) {
  ScriptedProbes p;
  p.last_errors = {cudaErrorInvalidValue};  // a bad argument: cleared once read
  EXPECT_EQ(p.decide(), cudaSuccess);
  EXPECT_EQ(p.sync_calls, 1);
}

TEST(StickyCudaError, AnAsynchronousErrorReportedOnceLeavesAWorkingContext) {
  ScriptedProbes p;
  p.syncs = {cudaErrorLaunchOutOfResources};
  EXPECT_EQ(p.decide(), cudaSuccess);
  EXPECT_EQ(p.sync_calls, 2);
  EXPECT_EQ(p.last_error_calls, 2);
}

TEST(StickyCudaError, AFaultEverySynchronisationRepeatsIsADeadContext) {
  ScriptedProbes p;
  p.last_errors = {cudaErrorIllegalAddress, cudaErrorIllegalAddress};
  p.syncs = {cudaErrorIllegalAddress, cudaErrorIllegalAddress};
  EXPECT_EQ(p.decide(), cudaErrorIllegalAddress);
  ScriptedProbes trap;
  trap.syncs = {cudaErrorLaunchFailure, cudaErrorLaunchFailure};
  EXPECT_EQ(trap.decide(), cudaErrorLaunchFailure);
}

}  // namespace
}  // namespace slidesparse
