// cuBLASLt dense GEMM plans. Column-major view: A = W (k x n, ld k, op T), B = x (k x m, ld ld_x,
// op N), C = D (n x m, ld ld_d): the "TN" form that sm_90 INT8/FP8 kernels require.
#include "gemm/cublaslt_gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "gemm/cuda_types.h"

namespace slidesparse {
namespace {

// cuBLASLt's heuristic is told it may use this much workspace (NVIDIA's advice for Hopper).
constexpr size_t kMaxWorkspaceBytes = size_t{32} << 20;

using HandleOwner = std::shared_ptr<std::remove_pointer_t<cublasLtHandle_t>>;

HandleOwner shared_handle() {
  static std::mutex mutex;
  static HandleOwner handle;
  std::lock_guard lock(mutex);
  if (!handle) {
    cublasLtHandle_t raw = nullptr;
    SS_CUDA_CHECK(cublasLtCreate(&raw));
    // Destroyed after the last plan that holds it; failures at exit are not worth reporting.
    handle = HandleOwner(raw, [](cublasLtHandle_t h) { cublasLtDestroy(h); });
  }
  return handle;
}

struct DescDeleter {
  void operator()(cublasLtMatmulDesc_t d) const { cublasLtMatmulDescDestroy(d); }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayout_t l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct PrefDeleter {
  void operator()(cublasLtMatmulPreference_t p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, DescDeleter>;
using Layout = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, LayoutDeleter>;
using Preference = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, PrefDeleter>;

Layout make_layout(DType dtype, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t raw = nullptr;
  SS_CUDA_CHECK(cublasLtMatrixLayoutCreate(&raw, to_cuda_data_type(dtype),
                                           static_cast<uint64_t>(rows), static_cast<uint64_t>(cols),
                                           ld));
  return Layout(raw);
}

template <class T>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value) {
  SS_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)));
}

class CublasLtPlan final : public GemmPlan {
 public:
  CublasLtPlan(const GemmProblem& problem, const std::optional<GemmAlgorithm>& requested,
               bool exclusive = false)
      : problem_(problem),
        handle_(shared_handle()),
        run_pointers_(gemm_plan_has_run_pointers(problem)),
        exclusive_(exclusive) {
    const bool int8 = problem.dtype == DType::kI8;
    cublasLtMatmulDesc_t raw_desc = nullptr;
    SS_CUDA_CHECK(cublasLtMatmulDescCreate(
        &raw_desc, int8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F, int8 ? CUDA_R_32I : CUDA_R_32F));
    desc_.reset(raw_desc);
    set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_TRANSA, cublasOperation_t{CUBLAS_OP_T});
    set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_TRANSB, cublasOperation_t{CUBLAS_OP_N});
    if (problem.scale_per_channel)
      set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
               int32_t{CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F});
    if (problem.scale_per_token)
      set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
               int32_t{CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F});
    if (problem.fast_accum) set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_FAST_ACCUM, int8_t{1});
    if (problem.bias) {
      set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
               cublasLtEpilogue_t{CUBLASLT_EPILOGUE_BIAS});
      set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
               int32_t{to_cuda_data_type(problem.out_dtype)});
    }
    a_ = make_layout(problem.dtype, problem.k, problem.n, problem.k);
    b_ = make_layout(problem.dtype, problem.k, problem.m, problem.x_stride());
    c_ = make_layout(problem.out_dtype, problem.n, problem.m, problem.d_stride());
    d_ = make_layout(problem.out_dtype, problem.n, problem.m, problem.d_stride());
    choose_algorithm(requested);
  }

  const GemmProblem& problem() const override { return problem_; }
  const GemmAlgorithm& algorithm() const override { return algorithm_; }
  size_t workspace_size() const override { return workspace_bytes_; }

  void run(const GemmArgs& args, cudaStream_t stream) const override {
    check_common_gemm_args("cuBLASLt", problem_, args, workspace_bytes_);
    SS_REQUIRE(!problem_.scale_per_token || args.scale_per_token != nullptr,
               "cuBLASLt GEMM: fused per-token scale without a pointer");
    SS_REQUIRE(!problem_.bias || args.bias != nullptr,
               "cuBLASLt GEMM: fused bias without a pointer");
    // The pointers live in the descriptor: a shared plan sets them and launches under one lock;
    // an exclusive plan (one owner, one thread) and a plan without pointers need none.
    std::unique_lock<std::mutex> lock(run_mutex_, std::defer_lock);
    if (run_pointers_ && !exclusive_) lock.lock();
    if (problem_.scale_per_channel)
      set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
               static_cast<const void*>(args.scale_per_channel));
    if (problem_.scale_per_token)
      set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
               static_cast<const void*>(args.scale_per_token));
    if (problem_.bias) set_desc(desc_.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, args.bias);
    const int32_t alpha_i = 1, beta_i = 0;
    const float alpha_f = 1.0f, beta_f = 0.0f;
    const bool int8 = problem_.dtype == DType::kI8;
    const void* alpha = int8 ? static_cast<const void*>(&alpha_i) : &alpha_f;
    const void* beta = int8 ? static_cast<const void*>(&beta_i) : &beta_f;
    SS_CUDA_CHECK(cublasLtMatmul(handle_.get(), desc_.get(), alpha, args.weight, a_.get(), args.x,
                                 b_.get(), beta, args.d, c_.get(), args.d, d_.get(), &algo_,
                                 args.workspace, workspace_bytes_, stream));
  }

  std::vector<cublasLtMatmulHeuristicResult_t> heuristics(int count) const {
    cublasLtMatmulPreference_t raw_pref = nullptr;
    SS_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&raw_pref));
    Preference pref(raw_pref);
    const size_t max_ws = kMaxWorkspaceBytes;
    SS_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof(max_ws)));
    std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
    int returned = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(handle_.get(), desc_.get(), a_.get(), b_.get(), c_.get(),
                                       d_.get(), pref.get(), count, results.data(), &returned);
    if (status == CUBLAS_STATUS_NOT_SUPPORTED || (status == CUBLAS_STATUS_SUCCESS && returned == 0))
      throw NotSupportedError("cuBLASLt has no algorithm for " + problem_.describe());
    SS_CUDA_CHECK(status);
    results.resize(static_cast<size_t>(returned));
    return results;
  }

 private:
  void choose_algorithm(const std::optional<GemmAlgorithm>& requested) {
    const bool has_words =
        requested && !requested->is_default &&
        std::any_of(requested->cublaslt_algo.begin(), requested->cublaslt_algo.end(),
                    [](uint64_t w) { return w != 0; });
    if (has_words) {
      static_assert(sizeof(cublasLtMatmulAlgo_t) == sizeof(GemmAlgorithm::cublaslt_algo));
      std::memcpy(&algo_, requested->cublaslt_algo.data(), sizeof(algo_));
      cublasLtMatmulHeuristicResult_t check{};
      const cublasStatus_t status = cublasLtMatmulAlgoCheck(
          handle_.get(), desc_.get(), a_.get(), b_.get(), c_.get(), d_.get(), &algo_, &check);
      if (status != CUBLAS_STATUS_SUCCESS)
        throw NotSupportedError("cuBLASLt refuses algorithm '" + requested->describe() + "' for " +
                                problem_.describe() + ": " + cublasLtGetStatusString(status));
      workspace_bytes_ = check.workspaceSize;
      algorithm_ = *requested;
      return;
    }
    const int index =
        requested && !requested->is_default ? std::max(requested->cublaslt_heuristic_index, 0) : 0;
    const auto results = heuristics(index + 1);
    if (index >= static_cast<int>(results.size()))
      throw NotSupportedError("cuBLASLt offers only " + std::to_string(results.size()) +
                              " algorithms for " + problem_.describe() + ", not heuristic #" +
                              std::to_string(index));
    algo_ = results[static_cast<size_t>(index)].algo;
    workspace_bytes_ = results[static_cast<size_t>(index)].workspaceSize;
    algorithm_ = GemmAlgorithm{};
    algorithm_.is_default = !(requested && !requested->is_default);
    algorithm_.cublaslt_heuristic_index = index;
    std::memcpy(algorithm_.cublaslt_algo.data(), &algo_, sizeof(algo_));
  }

  GemmProblem problem_;
  HandleOwner handle_;
  MatmulDesc desc_;
  Layout a_, b_, c_, d_;
  cublasLtMatmulAlgo_t algo_{};
  size_t workspace_bytes_ = 0;
  GemmAlgorithm algorithm_;
  bool run_pointers_ = false;
  bool exclusive_ = false;
  mutable std::mutex run_mutex_;
};

GemmSupport refuse(const GemmProblem& p, const std::string& why) {
  return GemmSupport{false, "cuBLASLt: " + why + " (" + p.describe() + ")"};
}

}  // namespace

GemmSupport cublaslt_probe_epilogue(const GemmProblem& p) {
  if (!p.scale_per_channel && !p.scale_per_token && !p.bias) return GemmSupport{true, ""};
  using Key = std::tuple<int, int, bool, bool, bool, bool>;
  static std::mutex mutex;
  static std::map<Key, GemmSupport> answers;
  const Key key{static_cast<int>(p.dtype),
                static_cast<int>(p.out_dtype),
                p.scale_per_channel,
                p.scale_per_token,
                p.bias,
                p.fast_accum};
  std::lock_guard lock(mutex);
  if (auto it = answers.find(key); it != answers.end()) return it->second;
  GemmProblem small = p;
  small.n = 32;
  small.k = 32;
  small.m = 16;
  small.ld_x = 32;
  small.ld_d = 32;
  GemmSupport answer{true, ""};
  try {
    CublasLtPlan plan(small, std::nullopt);
    DeviceBuffer zeros(4096);  // weight, x, scales and bias all read zeros from here
    DeviceBuffer d(16 * 32 * 4);
    DeviceBuffer workspace(std::max<size_t>(plan.workspace_size(), 1));
    SS_CUDA_CHECK(cudaMemset(zeros.get(), 0, zeros.bytes()));
    GemmArgs args;
    args.weight = zeros.get();
    args.x = zeros.get();
    args.d = d.get();
    args.scale_per_channel = zeros.as<float>();
    args.scale_per_token = zeros.as<float>();
    args.bias = zeros.get();
    args.workspace = workspace.get();
    args.workspace_bytes = workspace.bytes();
    plan.run(args, nullptr);
    SS_CUDA_CHECK(cudaDeviceSynchronize());
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const Error& e) {
    answer = GemmSupport{false, std::string("cuBLASLt refuses this fused epilogue on this GPU / "
                                            "library (") +
                                    small.describe() + "): " + e.what()};
  }
  answers.emplace(key, answer);
  return answer;
}

GemmSupport cublaslt_supports(const GemmProblem& p) {
  if (p.backend != GemmBackend::kCublasLt) return refuse(p, "not a cuBLASLt problem");
  if (p.n <= 0 || p.k <= 0 || p.m <= 0) return refuse(p, "empty problem");
  if (p.x_stride() < p.k || p.d_stride() < p.n) return refuse(p, "leading dimension too small");
  if (p.fast_accum && p.dtype != DType::kFP8E4M3)
    return refuse(p, "fast accumulation is an FP8 option");
  switch (p.dtype) {
    case DType::kI8:
      if (p.out_dtype != DType::kI32) return refuse(p, "INT8 outputs int32 only");
      if (p.scale_per_channel || p.scale_per_token || p.bias)
        return refuse(p, "INT8 with int32 output has no scale/bias epilogue");
      break;
    case DType::kFP8E4M3: {
      if (p.out_dtype != DType::kBF16 && p.out_dtype != DType::kF32)
        return refuse(p, "FP8 outputs bf16 or fp32");
      if (p.bias && p.out_dtype != DType::kBF16) return refuse(p, "FP8 bias needs bf16 output");
      if (const auto gpu = query_gpu(); gpu && !dtype_supported(p.dtype, *gpu))
        return refuse(p, dtype_unsupported_reason(p.dtype, *gpu));
      break;
    }
    case DType::kBF16:
      if (p.out_dtype != DType::kBF16 && p.out_dtype != DType::kF32)
        return refuse(p, "BF16 outputs bf16 or fp32");
      if (p.scale_per_channel || p.scale_per_token) return refuse(p, "BF16 takes no scale vectors");
      break;
    default:
      return refuse(p, "operand dtype must be int8, fp8 or bf16");
  }
  if (p.dtype != DType::kBF16) {
    // 8-bit kernels want 16-byte aligned rows of both operands.
    if (p.k % 16 != 0) return refuse(p, "8-bit GEMMs need K % 16 == 0 (pad K)");
    if (p.x_stride() % 16 != 0) return refuse(p, "8-bit GEMMs need ld_x % 16 == 0");
  }
  return GemmSupport{true, ""};
}

std::shared_ptr<const GemmPlan> make_cublaslt_plan(const GemmProblem& problem,
                                                   const std::optional<GemmAlgorithm>& algorithm,
                                                   bool exclusive) {
  if (auto s = cublaslt_supports(problem); !s) throw NotSupportedError(s.reason);
  if (auto s = cublaslt_probe_epilogue(problem); !s) throw NotSupportedError(s.reason);
  return std::make_shared<CublasLtPlan>(problem, algorithm, exclusive);
}

std::vector<GemmAlgorithm> cublaslt_heuristic_algorithms(const GemmProblem& problem,
                                                         int max_count) {
  if (auto s = cublaslt_supports(problem); !s) throw NotSupportedError(s.reason);
  CublasLtPlan plan(problem, std::nullopt);
  std::vector<GemmAlgorithm> out;
  const auto results = plan.heuristics(std::max(max_count, 1));
  for (size_t i = 0; i < results.size(); ++i) {
    GemmAlgorithm a;
    a.is_default = false;
    a.cublaslt_heuristic_index = static_cast<int>(i);
    std::memcpy(a.cublaslt_algo.data(), &results[i].algo, sizeof(results[i].algo));
    out.push_back(a);
  }
  return out;
}

}  // namespace slidesparse
