// Checks shared by the GEMM backends (gemm_op.h).
#include "gemm/gemm_op.h"

#include "slidesparse/error.h"

namespace slidesparse {

void check_common_gemm_args(const char* backend, const GemmProblem& problem, const GemmArgs& args,
                            size_t workspace_bytes) {
  SS_REQUIRE(args.weight != nullptr && args.x != nullptr && args.d != nullptr,
             backend << " GEMM (" << problem.describe() << "): null weight, x or d");
  SS_REQUIRE(args.workspace_bytes >= workspace_bytes &&
                 (workspace_bytes == 0 || args.workspace != nullptr),
             backend << " GEMM (" << problem.describe() << "): needs " << workspace_bytes
                     << " bytes of workspace, got " << args.workspace_bytes);
  SS_REQUIRE(
      !problem.scale_per_channel || args.scale_per_channel != nullptr,
      backend << " GEMM (" << problem.describe() << "): fused per-channel scale without a pointer");
}

}  // namespace slidesparse
