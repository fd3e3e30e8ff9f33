// cuSPARSELt plans. Library view (mixed orders, as cuSPARSELt allows): A = W' structured,
// row-major n x k, op N; B = x row-major m x k, op T; C = D column-major n x m with ld = ld_d,
// which is D row-major [m, ld_d] in the layer's orientation.
#include "gemm/cusparselt_gemm.h"

#include <cusparseLt.h>

#include <mutex>
#include <sstream>

#include "cuda/check.h"
#include "cuda/device_info.h"
#include "gemm/cuda_types.h"

namespace slidesparse {
namespace {

constexpr uint32_t kAlignmentBytes = 16;
constexpr size_t kCompressedSlackBytes = size_t{64} << 10;

// Process-wide handle; plans share it and keep it alive until the last one is gone.
class Handle {
 public:
  Handle() { SS_CUDA_CHECK(cusparseLtInit(&handle_)); }
  ~Handle() { cusparseLtDestroy(&handle_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  const cusparseLtHandle_t* get() const { return &handle_; }

 private:
  cusparseLtHandle_t handle_{};
};

std::shared_ptr<const Handle> shared_handle() {
  static std::mutex mutex;
  static std::shared_ptr<const Handle> handle;
  std::lock_guard lock(mutex);
  if (!handle) handle = std::make_shared<const Handle>();
  return handle;
}

// Setup calls refused for this shape / dtype / algorithm are "not supported", not failures.
void setup_check(cusparseStatus_t status, const char* call, const GemmProblem& p) {
  if (status == CUSPARSE_STATUS_SUCCESS) return;
  if (status == CUSPARSE_STATUS_NOT_SUPPORTED || status == CUSPARSE_STATUS_INVALID_VALUE) {
    std::ostringstream os;
    os << "cuSPARSELt refuses " << p.describe() << ": " << call << " returned "
       << cusparseLtGetErrorName(status) << " (" << cusparseLtGetErrorString(status) << ")";
    throw NotSupportedError(os.str());
  }
  check(status, call, __FILE__, __LINE__);
}

// RAII for a caller-owned cuSPARSELt matrix descriptor.
class MatDescriptor {
 public:
  MatDescriptor() = default;
  ~MatDescriptor() {
    if (live_) cusparseLtMatDescriptorDestroy(&desc_);
  }
  MatDescriptor(const MatDescriptor&) = delete;
  MatDescriptor& operator=(const MatDescriptor&) = delete;
  cusparseLtMatDescriptor_t* init_target() { return &desc_; }
  void mark_live() { live_ = true; }
  const cusparseLtMatDescriptor_t* get() const { return &desc_; }

 private:
  cusparseLtMatDescriptor_t desc_{};
  bool live_ = false;
};

void init_structured(const Handle& h, MatDescriptor& d, DType dtype, int64_t n, int64_t k,
                     const GemmProblem& p) {
  setup_check(cusparseLtStructuredDescriptorInit(h.get(), d.init_target(), n, k, k, kAlignmentBytes,
                                                 to_cuda_data_type(dtype), CUSPARSE_ORDER_ROW,
                                                 CUSPARSELT_SPARSITY_50_PERCENT),
              "cusparseLtStructuredDescriptorInit(W')", p);
  d.mark_live();
}

cusparseComputeType compute_type(DType dtype) {
  return dtype == DType::kI8 ? CUSPARSE_COMPUTE_32I : CUSPARSE_COMPUTE_32F;
}

class CusparseLtPlan final : public GemmPlan {
 public:
  CusparseLtPlan(const GemmProblem& p, const std::optional<GemmAlgorithm>& requested)
      : problem_(p), handle_(shared_handle()) {
    const Handle& h = *handle_;
    init_structured(h, a_, p.dtype, p.n, p.k, p);
    setup_check(cusparseLtDenseDescriptorInit(h.get(), b_.init_target(), p.m, p.k, p.x_stride(),
                                              kAlignmentBytes, to_cuda_data_type(p.dtype),
                                              CUSPARSE_ORDER_ROW),
                "cusparseLtDenseDescriptorInit(x)", p);
    b_.mark_live();
    setup_check(cusparseLtDenseDescriptorInit(h.get(), d_.init_target(), p.n, p.m, p.d_stride(),
                                              kAlignmentBytes, to_cuda_data_type(p.out_dtype),
                                              CUSPARSE_ORDER_COL),
                "cusparseLtDenseDescriptorInit(D)", p);
    d_.mark_live();
    setup_check(cusparseLtMatmulDescriptorInit(h.get(), &matmul_, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                               CUSPARSE_OPERATION_TRANSPOSE, a_.get(), b_.get(),
                                               d_.get(), d_.get(), compute_type(p.dtype)),
                "cusparseLtMatmulDescriptorInit", p);
    if (p.scale_per_channel) {
      const int on = 1;
      setup_check(cusparseLtMatmulDescSetAttribute(
                      h.get(), &matmul_, CUSPARSELT_MATMUL_ALPHA_VECTOR_SCALING, &on, sizeof(on)),
                  "CUSPARSELT_MATMUL_ALPHA_VECTOR_SCALING", p);
    }
    if (p.bias) {
      const void* bias = p.sparse_bias;
      setup_check(cusparseLtMatmulDescSetAttribute(
                      h.get(), &matmul_, CUSPARSELT_MATMUL_BIAS_POINTER, &bias, sizeof(bias)),
                  "CUSPARSELT_MATMUL_BIAS_POINTER", p);
    }
    setup_check(cusparseLtMatmulAlgSelectionInit(h.get(), &alg_sel_, &matmul_,
                                                 CUSPARSELT_MATMUL_ALG_DEFAULT),
                "cusparseLtMatmulAlgSelectionInit", p);
    alg_sel_live_ = true;
    const bool tuned = requested && !requested->is_default;
    if (tuned) {
      const GemmAlgorithm& a = *requested;
      setup_check(
          cusparseLtMatmulAlgSetAttribute(h.get(), &alg_sel_, CUSPARSELT_MATMUL_ALG_CONFIG_ID,
                                          &a.alg_config_id, sizeof(a.alg_config_id)),
          "CUSPARSELT_MATMUL_ALG_CONFIG_ID", p);
      if (a.split_k != 1) {
        setup_check(cusparseLtMatmulAlgSetAttribute(h.get(), &alg_sel_, CUSPARSELT_MATMUL_SPLIT_K,
                                                    &a.split_k, sizeof(a.split_k)),
                    "CUSPARSELT_MATMUL_SPLIT_K", p);
        if (a.split_k_mode > 0) {
          const auto mode = static_cast<cusparseLtSplitKMode_t>(a.split_k_mode);
          setup_check(cusparseLtMatmulAlgSetAttribute(
                          h.get(), &alg_sel_, CUSPARSELT_MATMUL_SPLIT_K_MODE, &mode, sizeof(mode)),
                      "CUSPARSELT_MATMUL_SPLIT_K_MODE", p);
        }
      }
    }
    setup_check(cusparseLtMatmulPlanInit(h.get(), &plan_, &matmul_, &alg_sel_),
                "cusparseLtMatmulPlanInit", p);
    plan_live_ = true;
    setup_check(cusparseLtMatmulGetWorkspace(h.get(), &plan_, &workspace_bytes_),
                "cusparseLtMatmulGetWorkspace", p);
    // Report what runs: the requested values, or what the default selection holds.
    if (tuned) {
      algorithm_ = *requested;
    } else {
      algorithm_ = GemmAlgorithm{};
      cusparseLtMatmulAlgGetAttribute(h.get(), &alg_sel_, CUSPARSELT_MATMUL_ALG_CONFIG_ID,
                                      &algorithm_.alg_config_id, sizeof(int));
      cusparseLtMatmulAlgGetAttribute(h.get(), &alg_sel_, CUSPARSELT_MATMUL_SPLIT_K,
                                      &algorithm_.split_k, sizeof(int));
    }
    cusparseLtMatmulAlgGetAttribute(h.get(), &alg_sel_, CUSPARSELT_MATMUL_ALG_CONFIG_MAX_ID,
                                    &max_config_id_, sizeof(int));
  }

  ~CusparseLtPlan() override {
    if (plan_live_) cusparseLtMatmulPlanDestroy(&plan_);
    if (alg_sel_live_) cusparseLtMatmulAlgSelectionDestroy(&alg_sel_);
  }
  CusparseLtPlan(const CusparseLtPlan&) = delete;
  CusparseLtPlan& operator=(const CusparseLtPlan&) = delete;

  const GemmProblem& problem() const override { return problem_; }
  const GemmAlgorithm& algorithm() const override { return algorithm_; }
  size_t workspace_size() const override { return workspace_bytes_; }
  int max_config_id() const { return max_config_id_; }

  // cusparseLtMatmulSearch: the library times its own candidates on these operands and leaves
  // the fastest in the plan's selection; returns what it chose.
  GemmAlgorithm library_search(const GemmArgs& args, int iterations, cudaStream_t stream) {
    check_args(args);
    SS_CUDA_CHECK(cusparseLtMatmulAlgSetAttribute(handle_->get(), &alg_sel_,
                                                  CUSPARSELT_MATMUL_SEARCH_ITERATIONS, &iterations,
                                                  sizeof(iterations)));
    const float one = 1.0f, zero = 0.0f;
    cudaStream_t streams[1] = {stream};
    SS_CUDA_CHECK(cusparseLtMatmulSearch(handle_->get(), &plan_, alpha_pointer(args, one),
                                         args.weight, args.x, &zero, args.d, args.d, args.workspace,
                                         streams, 1));
    GemmAlgorithm found;
    found.is_default = false;
    const cusparseLtHandle_t* h = handle_->get();
    SS_CUDA_CHECK(cusparseLtMatmulAlgGetAttribute(h, &alg_sel_, CUSPARSELT_MATMUL_ALG_CONFIG_ID,
                                                  &found.alg_config_id, sizeof(int)));
    SS_CUDA_CHECK(cusparseLtMatmulAlgGetAttribute(h, &alg_sel_, CUSPARSELT_MATMUL_SPLIT_K,
                                                  &found.split_k, sizeof(int)));
    if (found.split_k != 1) {
      cusparseLtSplitKMode_t mode{};
      if (cusparseLtMatmulAlgGetAttribute(h, &alg_sel_, CUSPARSELT_MATMUL_SPLIT_K_MODE, &mode,
                                          sizeof(mode)) == CUSPARSE_STATUS_SUCCESS)
        found.split_k_mode = static_cast<int>(mode);
    }
    return found;
  }

  void run(const GemmArgs& args, cudaStream_t stream) const override {
    check_args(args);
    const float one = 1.0f, zero = 0.0f;
    cudaStream_t streams[1] = {stream};
    SS_CUDA_CHECK(cusparseLtMatmul(handle_->get(), &plan_, alpha_pointer(args, one), args.weight,
                                   args.x, &zero, args.d, args.d, args.workspace, streams, 1));
  }

 private:
  const void* alpha_pointer(const GemmArgs& args, const float& one) const {
    return problem_.scale_per_channel ? static_cast<const void*>(args.scale_per_channel)
                                      : static_cast<const void*>(&one);
  }

  void check_args(const GemmArgs& args) const {
    check_common_gemm_args("cuSPARSELt", problem_, args, workspace_bytes_);
    SS_REQUIRE(!problem_.bias || args.bias == problem_.sparse_bias,
               "cuSPARSELt GEMM: this plan was made for another bias buffer");
  }

  GemmProblem problem_;
  std::shared_ptr<const Handle> handle_;
  MatDescriptor a_, b_, d_;
  cusparseLtMatmulDescriptor_t matmul_{};
  cusparseLtMatmulAlgSelection_t alg_sel_{};
  cusparseLtMatmulPlan_t plan_{};
  bool alg_sel_live_ = false;
  bool plan_live_ = false;
  size_t workspace_bytes_ = 0;
  int max_config_id_ = 0;
  GemmAlgorithm algorithm_;
};

GemmSupport refuse(const GemmProblem& p, const std::string& why) {
  return GemmSupport{false, "cuSPARSELt: " + why + " (" + p.describe() + ")"};
}

}  // namespace

GemmSupport cusparselt_supports(const GemmProblem& p) {
  if (p.backend != GemmBackend::kCusparseLt) return refuse(p, "not a cuSPARSELt problem");
  if (p.n <= 0 || p.k <= 0 || p.m <= 0) return refuse(p, "empty problem");
  if (p.x_stride() < p.k || p.d_stride() < p.n) return refuse(p, "leading dimension too small");
  switch (p.dtype) {
    case DType::kI8:
      if (p.out_dtype != DType::kI32 && p.out_dtype != DType::kBF16)
        return refuse(p, "INT8 outputs int32 or bf16 here");
      if (p.out_dtype == DType::kI32 && (p.scale_per_channel || p.bias))
        return refuse(p, "int32 output takes no scale/bias epilogue");
      break;
    case DType::kFP8E4M3: {
      if (p.out_dtype != DType::kBF16 && p.out_dtype != DType::kF32)
        return refuse(p, "FP8 outputs bf16 or fp32 here");
      if (const auto gpu = query_gpu(); gpu && !dtype_supported(p.dtype, *gpu))
        return refuse(p, dtype_unsupported_reason(p.dtype, *gpu));
      break;
    }
    case DType::kBF16:
      if (p.out_dtype != DType::kBF16) return refuse(p, "BF16 outputs bf16 here");
      break;
    default:
      return refuse(p, "operand dtype must be int8, fp8 or bf16");
  }
  if (p.scale_per_token) return refuse(p, "no per-token (column) scale epilogue");
  if (p.fast_accum) return refuse(p, "fast accumulation is a cuBLASLt FP8 option");
  if (p.bias && (p.out_dtype != DType::kBF16 || p.sparse_bias == nullptr))
    return refuse(p, "fused bias needs bf16 output and the bias buffer at plan time");
  if (p.n % kCusparseLtRowAlign != 0 || p.k % kCusparseLtRowAlign != 0)
    return refuse(p, "the structured operand needs n and k multiples of 32 (pad them)");
  if (p.m % kCusparseLtTokenAlign != 0) return refuse(p, "m must be a multiple of 32 (pad it)");
  if (p.x_stride() % kCusparseLtRowAlign != 0 || p.d_stride() % kCusparseLtRowAlign != 0)
    return refuse(p, "leading dimensions must be multiples of 32");
  return GemmSupport{true, ""};
}

std::shared_ptr<const GemmPlan> make_cusparselt_plan(
    const GemmProblem& problem, const std::optional<GemmAlgorithm>& algorithm) {
  if (auto s = cusparselt_supports(problem); !s) throw NotSupportedError(s.reason);
  return std::make_shared<CusparseLtPlan>(problem, algorithm);
}

int cusparselt_max_alg_config_id(const GemmProblem& problem) {
  if (auto s = cusparselt_supports(problem); !s) throw NotSupportedError(s.reason);
  CusparseLtPlan plan(problem, std::nullopt);
  return plan.max_config_id();
}

GemmAlgorithm cusparselt_library_search(const GemmProblem& problem, const GemmArgs& args,
                                        int iterations, cudaStream_t stream) {
  if (auto s = cusparselt_supports(problem); !s) throw NotSupportedError(s.reason);
  SS_REQUIRE(iterations > 0, "cusparselt_library_search: iterations must be positive");
  CusparseLtPlan plan(problem, std::nullopt);
  GemmAlgorithm found = plan.library_search(args, iterations, stream);
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  return found;
}

CompressedWeight compress_sparse_weight(DType dtype, int64_t n, int64_t k, const void* weight,
                                        cudaStream_t stream, const std::string& what) {
  GemmProblem p;
  p.backend = GemmBackend::kCusparseLt;
  p.dtype = dtype;
  p.out_dtype = dtype == DType::kI8 ? DType::kI32 : DType::kBF16;
  p.n = n;
  p.k = k;
  p.m = kCusparseLtTokenAlign;
  if (auto s = cusparselt_supports(p); !s) throw NotSupportedError(what + ": " + s.reason);
  auto handle = shared_handle();
  MatDescriptor desc;
  init_structured(*handle, desc, dtype, n, k, p);

  DeviceBuffer valid(sizeof(int));
  SS_CUDA_CHECK(cudaMemsetAsync(valid.get(), 0, sizeof(int), stream));
  SS_CUDA_CHECK(cusparseLtSpMMAPruneCheck2(handle->get(), desc.get(), 1,
                                           CUSPARSE_OPERATION_NON_TRANSPOSE, weight,
                                           valid.as<int>(), stream));
  int is_invalid = 0;
  SS_CUDA_CHECK(
      cudaMemcpyAsync(&is_invalid, valid.get(), sizeof(int), cudaMemcpyDeviceToHost, stream));
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (is_invalid != 0)
    throw PatternError(what + ": the slid weight W' [" + std::to_string(n) + ", " +
                           std::to_string(k) +
                           "] is not 2:4 (cusparseLtSpMMAPruneCheck); it cannot run on the "
                           "sparse tensor cores",
                       -1, -1);

  size_t compressed_bytes = 0, scratch_bytes = 0;
  SS_CUDA_CHECK(
      cusparseLtSpMMACompressedSize2(handle->get(), desc.get(), &compressed_bytes, &scratch_bytes));
  CompressedWeight out;
  // cuSPARSELt 0.8.0 sm_90 kernels read up to ~2 KB past the size it reports (seen with
  // compute-sanitizer memcheck on 96 x 192 weights); give them zeroed slack to read.
  out.data = DeviceBuffer(compressed_bytes + kCompressedSlackBytes);
  SS_CUDA_CHECK(cudaMemsetAsync(out.data.get(), 0, out.data.bytes(), stream));
  out.dtype = dtype;
  out.n = n;
  out.k = k;
  DeviceBuffer scratch(std::max<size_t>(scratch_bytes, 1));
  SS_CUDA_CHECK(cusparseLtSpMMACompress2(handle->get(), desc.get(), 1,
                                         CUSPARSE_OPERATION_NON_TRANSPOSE, weight, out.data.get(),
                                         scratch.get(), stream));
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  return out;
}

}  // namespace slidesparse
