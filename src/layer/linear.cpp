// LinearLayer: weight preparation on the host (HostWeight: quantise per channel, slide, pad) or on
// the GPU (DeviceWeight: src/kernels/weight_prep.h), then for SlideSparse the GPU 2:4 check and
// compression. prepare() resolves per M bucket the GEMM plan and kernel launch configurations;
// forward() only looks its bucket up and enqueues work into the caller's scratch.
#include "slidesparse/layer/linear.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <sstream>
#include <vector>

#include "core/weight_prep.h"
#include "cuda/check.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "gemm/cublaslt_gemm.h"
#include "gemm/gemm_op.h"
#include "kernels/dequant.h"
#include "kernels/quant.h"
#include "kernels/weight_prep.h"
#include "layer/activation_pad.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"
#include "slidesparse/tuning/tuning_lookup.h"
#ifdef SLIDESPARSE_HAVE_CUSPARSELT
#include "gemm/cusparselt_gemm.h"
#endif

namespace slidesparse {
namespace {

// Row multiples: dense 8-bit tokens (16-byte rows for cuBLASLt), dense output features, and the
// sparse operand / token multiples of cuSPARSELt.
constexpr int64_t kDenseTokenAlign = 16;
constexpr int64_t kDenseRowAlign = 16;
constexpr int64_t kSparseAlign = 32;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

std::vector<float> weight_as_float(const HostWeight& w) {
  const size_t count = static_cast<size_t>(w.n) * static_cast<size_t>(w.k);
  if (w.dtype == DType::kF32) {
    const auto* p = static_cast<const float*>(w.data);
    return std::vector<float>(p, p + count);
  }
  const auto* p = static_cast<const bf16_t*>(w.data);
  return to_float_vector(std::span<const bf16_t>(p, count));
}

// The weight in the compute dtype, [n, k] (not slid), with its scales (core/weight_prep.h).
WeightCodes codes_for(const HostWeight& w, DType compute, const char* what) {
  const bool full_precision = w.dtype == DType::kF32 || w.dtype == DType::kBF16;
  if (full_precision) {
    if (compute == DType::kBF16 && w.dtype == DType::kBF16)
      return weight_codes_from(DType::kBF16, w.data, w.n, w.k);
    return quantize_weight(weight_as_float(w), w.n, w.k, compute);
  }
  SS_REQUIRE(w.dtype == compute, what << ": weight codes are " << dtype_name(w.dtype)
                                      << " but the layer computes in " << dtype_name(compute));
  SS_REQUIRE(static_cast<int64_t>(w.scale_per_channel.size()) == w.n,
             what << ": " << dtype_name(w.dtype) << " codes need " << w.n
                  << " per-channel scales, got " << w.scale_per_channel.size());
  return weight_codes_from(compute, w.data, w.n, w.k, w.scale_per_channel);
}

// Copies rows [n, cols] into a zeroed [n_pad, cols_pad] host buffer.
std::vector<uint8_t> pad_rows(std::span<const std::byte> src, int64_t n, int64_t cols,
                              int64_t n_pad, int64_t cols_pad, int64_t elem) {
  std::vector<uint8_t> out(
      static_cast<size_t>(n_pad) * static_cast<size_t>(cols_pad) * static_cast<size_t>(elem), 0);
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(out.data() + static_cast<size_t>(r) * cols_pad * elem,
                src.data() + static_cast<size_t>(r) * cols * elem,
                static_cast<size_t>(cols * elem));
  return out;
}

DeviceBuffer upload(const void* data, size_t bytes) {
  DeviceBuffer buffer(std::max<size_t>(bytes, 1));
  if (bytes > 0) SS_CUDA_CHECK(cudaMemcpy(buffer.get(), data, bytes, cudaMemcpyHostToDevice));
  return buffer;
}

template <class T>
std::vector<T> padded(std::span<const T> v, int64_t size) {
  std::vector<T> out(static_cast<size_t>(size), T{});
  std::copy(v.begin(), v.end(), out.begin());
  return out;
}

}  // namespace

std::string_view epilogue_name(Epilogue epilogue) {
  return epilogue == Epilogue::kFused ? "fused" : "kernel";
}

Epilogue parse_epilogue(std::string_view text) {
  if (text == "kernel") return Epilogue::kKernel;
  if (text == "fused") return Epilogue::kFused;
  throw Error("unknown epilogue '" + std::string(text) + "': accepted are kernel and fused");
}

std::string GemmChoice::describe() const {
  std::string s = forced ? "forced: " : (tuned ? "tuned: " : "");
  s += algorithm.describe();
  if (algorithm.is_default) {
    if (algorithm.cublaslt_heuristic_index >= 0)
      s += " (heuristic #" + std::to_string(algorithm.cublaslt_heuristic_index) + ")";
    else
      s += " (cfg " + std::to_string(algorithm.alg_config_id) + ")";
  }
  return s;
}

struct LinearLayer::Bucket {
  int64_t m = 0;      // the bucket's M
  int64_t m_pad = 0;  // gemm_m(m): rows of x the GEMM reads, rows of its output
  std::shared_ptr<const GemmPlan> plan;
  GemmChoice choice;
  KernelLaunchConfig quant_config;    // quant, quant_slide or slide, as the layer runs
  KernelLaunchConfig dequant_config;  // dequant (and the residual add)
  size_t workspace_upto = 0;          // the largest GEMM workspace of this and smaller buckets
};

// Offsets of the pieces of a scratch for one bucket; every piece 256-byte aligned.
struct LinearLayer::ScratchLayout {
  size_t activations = 0, activations_bytes = 0;
  size_t token_scales = 0, token_scales_bytes = 0;
  size_t acc = 0, acc_bytes = 0;
  size_t workspace = 0, workspace_bytes = 0;
  size_t total = 0;
};

struct LinearLayer::Impl {
  DType gemm_out = DType::kI32;
  bool dequant_kernel = true;  // a kernel runs after the GEMM
  bool fuse_scale_per_channel = false;
  bool fuse_scale_per_token = false;
  bool fuse_bias = false;

  DeviceBuffer weight;             // dense [n_gemm, k_gemm]; sparse: compressed W'
  DeviceBuffer scale_per_channel;  // [n_gemm] floats, zero padding (8-bit only)
  DeviceBuffer bias_f32;           // [n] (dequant kernel)
  DeviceBuffer bias_bf16;          // [n_gemm] (library epilogue)
  bool has_bias = false;

  std::vector<Bucket> buckets;  // ascending m
  std::vector<int64_t> bucket_ms;
};

namespace {

constexpr size_t kScratchAlign = 256;

size_t align_up(size_t v) { return (v + kScratchAlign - 1) / kScratchAlign * kScratchAlign; }

void* at(LinearScratch s, size_t offset) { return static_cast<uint8_t*>(s.data) + offset; }

std::string list_ms(const std::vector<int64_t>& ms) {
  if (ms.empty()) return "none (prepare() was not called)";
  std::string out;
  for (size_t i = 0; i < ms.size(); ++i) out += (i ? ", " : "") + std::to_string(ms[i]);
  return out;
}

}  // namespace

LinearLayer::~LinearLayer() = default;
LinearLayer::LinearLayer(LinearLayer&&) noexcept = default;
LinearLayer& LinearLayer::operator=(LinearLayer&&) noexcept = default;

void LinearLayer::init_layout(int64_t n, int64_t k, bool has_bias, const char* what) {
  const DType compute = options_.compute;
  SS_REQUIRE_T(
      NotSupportedError,
      compute == DType::kI8 || compute == DType::kFP8E4M3 || compute == DType::kBF16,
      what << ": compute dtype " << dtype_name(compute) << " is not supported (int8, fp8, bf16)");
  SS_REQUIRE(n > 0 && k > 0, what << ": empty weight [" << n << ", " << k << "]");
  require_dtype_supported(compute);
#ifndef SLIDESPARSE_HAVE_CUSPARSELT
  if (sparsity_)
    throw NotSupportedError(std::string(what) +
                            ": this build has no cuSPARSELt (sparse backend not built)");
#endif
  fast_accum_ = options_.fast_accum && !sparsity_ && compute == DType::kFP8E4M3;

  Impl& im = *impl_;
  const bool quantized = compute != DType::kBF16;
  const bool fused = options_.epilogue == Epilogue::kFused;
  // What the GEMM writes and who applies scales / bias (see Epilogue in linear.h).
  if (!fused || (!sparsity_ && compute == DType::kI8)) {
    epilogue_ = Epilogue::kKernel;
    if (fused) epilogue_note_ = "cuBLASLt INT8 (int32 output) has no scale/bias epilogue";
    im.gemm_out = compute == DType::kI8        ? DType::kI32
                  : compute == DType::kFP8E4M3 ? DType::kF32
                                               : DType::kBF16;
    im.dequant_kernel = true;
  } else {
    epilogue_ = Epilogue::kFused;
    im.gemm_out = DType::kBF16;
    if (!sparsity_) {  // cuBLASLt: FP8 takes everything, BF16 the bias
      im.fuse_scale_per_channel = quantized;
      im.fuse_scale_per_token = quantized;
      im.fuse_bias = has_bias;
      im.dequant_kernel = false;
      GemmProblem probe;
      probe.backend = GemmBackend::kCublasLt;
      probe.dtype = compute;
      probe.out_dtype = DType::kBF16;
      probe.scale_per_channel = im.fuse_scale_per_channel;
      probe.scale_per_token = im.fuse_scale_per_token;
      probe.bias = im.fuse_bias;
      probe.fast_accum = fast_accum_;
      if (auto ok = cublaslt_probe_epilogue(probe); !ok) {
        // This GPU / cuBLASLt cannot take the epilogue: run the kernel epilogue, and say so.
        epilogue_ = Epilogue::kKernel;
        epilogue_note_ = ok.reason;
        im.gemm_out = compute == DType::kFP8E4M3 ? DType::kF32 : DType::kBF16;
        im.fuse_scale_per_channel = im.fuse_scale_per_token = im.fuse_bias = false;
        im.dequant_kernel = true;
      }
    } else if (quantized) {  // cuSPARSELt 8-bit: s_w as alpha vector; s_x + bias in the kernel
      im.fuse_scale_per_channel = true;
      im.dequant_kernel = true;
      GemmProblem probe;
      probe.backend = GemmBackend::kCusparseLt;
      probe.dtype = compute;
      probe.out_dtype = DType::kBF16;
      probe.n = probe.k = probe.m = 32;
      probe.scale_per_channel = true;
      try {
        get_gemm_plan(probe, std::nullopt);
      } catch (const NotSupportedError& e) {
        // cuSPARSELt 0.8 has no alpha vector for E4M3: keep the bf16 GEMM output (half the
        // bytes of fp32) and let the dequant kernel apply both scales and the bias.
        im.fuse_scale_per_channel = false;
        epilogue_note_ = std::string(
                             "no alpha-vector scaling here, bf16 GEMM output and all "
                             "scales in the dequant kernel: ") +
                         e.what();
      }
    } else {  // cuSPARSELt BF16: bias in the epilogue
      im.fuse_bias = has_bias;
      im.dequant_kernel = false;
    }
  }
  if (!im.dequant_kernel) {
    if (!epilogue_note_.empty()) epilogue_note_ += "; ";
    epilogue_note_ +=
        "with a residual the library epilogue writes its bf16 output to scratch and the "
        "dequant kernel adds the residual (a second bf16 rounding)";
  }

  if (sparsity_) {
    n_gemm_ = round_up(n, kSparseAlign);
    k_gemm_ = sparsity_->k_slide(k);
  } else {
    n_gemm_ = round_up(n, kDenseRowAlign);
    k_gemm_ = round_up(k, quantized ? 16 : 8);
  }
}

namespace {

// The padded dense weight [n_gemm, k_gemm] becomes the GEMM's operand: itself (dense) or the
// cuSPARSELt-compressed W' after the library's 2:4 check (sparse).
DeviceBuffer install_weight(DeviceBuffer padded, bool sparse, DType compute, int64_t n_gemm,
                            int64_t k_gemm, cudaStream_t stream, const std::string& what) {
  if (!sparse) return padded;
#ifdef SLIDESPARSE_HAVE_CUSPARSELT
  CompressedWeight compressed =
      compress_sparse_weight(compute, n_gemm, k_gemm, padded.get(), stream, what);
  return std::move(compressed.data);
#else
  (void)compute, (void)n_gemm, (void)k_gemm, (void)stream;
  throw NotSupportedError(what + ": this build has no cuSPARSELt (sparse backend not built)");
#endif
}

}  // namespace

LinearLayer::LinearLayer(const HostWeight& w, std::span<const float> bias, LinearOptions options,
                         std::optional<Sparsity> sparsity)
    : n_(w.n),
      k_(w.k),
      options_(std::move(options)),
      backend_(sparsity ? GemmBackend::kCusparseLt : GemmBackend::kCublasLt),
      sparsity_(sparsity),
      impl_(std::make_unique<Impl>()) {
  const char* what = sparsity ? "SlideSparseLinear" : "Linear";
  const DType compute = options_.compute;
  SS_REQUIRE(w.n > 0 && w.k > 0, what << ": empty weight [" << w.n << ", " << w.k << "]");
  SS_REQUIRE(w.data != nullptr, what << ": weight data is null");
  SS_REQUIRE(bias.empty() || static_cast<int64_t>(bias.size()) == w.n,
             what << ": bias has " << bias.size() << " elements, expected " << w.n << " or none");
  SS_REQUIRE(!w.slid || sparsity, what << ": slid codes need a SlideSparse layer");
  SS_REQUIRE(
      !w.slid || (w.dtype != DType::kF32 && w.dtype != DType::kBF16) || compute == DType::kBF16,
      what << ": a slid weight must be codes in the compute dtype (or bf16 for BF16)");
  init_layout(w.n, w.k, !bias.empty(), what);

  Impl& im = *impl_;
  const bool quantized = compute != DType::kBF16;
  // Host weight in the compute dtype, then slid (SlideSparse) and padded.
  const int64_t elem = dtype_size(compute);
  WeightCodes codes;
  if (w.slid) {
    const int64_t k_slide = sparsity->k_slide(w.k);
    SS_REQUIRE(w.dtype == compute, what << ": slid codes are " << dtype_name(w.dtype)
                                        << ", the layer computes in " << dtype_name(compute));
    SS_REQUIRE(!quantized || static_cast<int64_t>(w.scale_per_channel.size()) == w.n,
               what << ": slid codes need " << w.n << " per-channel scales, got "
                    << w.scale_per_channel.size());
    codes = weight_codes_from(compute, w.data, w.n, k_slide,
                              quantized ? w.scale_per_channel : std::span<const float>{});
  } else {
    codes = codes_for(w, compute, what);
    // slide_weight throws PatternError naming row and block when W is not Z:L.
    if (sparsity) codes = slide_weight(codes, *sparsity);
  }

  const std::vector<float> channel_scales = std::move(codes.scale_per_channel);
  {
    const std::vector<uint8_t> host =
        pad_rows(codes.bytes(), n_, codes.cols, n_gemm_, k_gemm_, elem);
    codes = WeightCodes{};  // only the padded copy is needed from here
    CudaStream stream;
    const std::string name = sparsity ? std::string(what) + " " + sparsity->name() : what;
    im.weight = install_weight(upload(host.data(), host.size()), sparsity.has_value(), compute,
                               n_gemm_, k_gemm_, stream.get(), name);
  }
  if (quantized) {
    const auto scales = padded<float>(channel_scales, n_gemm_);
    im.scale_per_channel = upload(scales.data(), scales.size() * sizeof(float));
  }
  if (!bias.empty()) {
    im.has_bias = true;
    im.bias_f32 = upload(bias.data(), bias.size() * sizeof(float));
    const auto bias16 = padded<bf16_t>(to_bf16_vector(bias), n_gemm_);
    im.bias_bf16 = upload(bias16.data(), bias16.size() * sizeof(bf16_t));
  }
}

LinearLayer::LinearLayer(const DeviceWeight& w, const float* device_bias, LinearOptions options,
                         std::optional<Sparsity> sparsity, cudaStream_t stream)
    : n_(w.n),
      k_(w.k),
      options_(std::move(options)),
      backend_(sparsity ? GemmBackend::kCusparseLt : GemmBackend::kCublasLt),
      sparsity_(sparsity),
      impl_(std::make_unique<Impl>()) {
  const char* what = sparsity ? "SlideSparseLinear" : "Linear";
  const DType compute = options_.compute;
  SS_REQUIRE(w.n > 0 && w.k > 0, what << ": empty weight [" << w.n << ", " << w.k << "]");
  SS_REQUIRE(w.data != nullptr, what << ": weight data is null");
  SS_REQUIRE(!w.slid || sparsity, what << ": slid codes need a SlideSparse layer");
  std::vector<float> bias;
  if (device_bias != nullptr) {
    bias.resize(static_cast<size_t>(w.n));
    SS_CUDA_CHECK(cudaMemcpyAsync(bias.data(), device_bias, bias.size() * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream));
    SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  init_layout(w.n, w.k, !bias.empty(), what);

  Impl& im = *impl_;
  const bool quantized = compute != DType::kBF16;
  const bool values = w.dtype == DType::kF32 || w.dtype == DType::kBF16;
  const int64_t elem = dtype_size(compute);
  const std::string name = sparsity ? std::string(what) + " " + sparsity->name() : what;
  const void* source = w.data;
  const float* scales = w.scale_per_channel;
  DeviceBuffer codes, code_scales;  // made here from values (8-bit layers)
  if (quantized && values) {
    SS_REQUIRE(!w.slid, what << ": a slid weight must be codes in the compute dtype");
    codes = DeviceBuffer(static_cast<size_t>(w.n) * static_cast<size_t>(w.k));
    code_scales = DeviceBuffer(static_cast<size_t>(w.n) * sizeof(float));
    launch_quantize_rows(w.data, w.dtype, w.n, w.k, compute, codes.get(), code_scales.as<float>(),
                         stream);
    source = codes.get();
    scales = code_scales.as<float>();
  } else if (quantized) {
    SS_REQUIRE(w.dtype == compute, what << ": weight codes are " << dtype_name(w.dtype)
                                        << " but the layer computes in " << dtype_name(compute));
    SS_REQUIRE(scales != nullptr,
               what << ": " << dtype_name(w.dtype) << " codes need per-channel scales");
  } else {
    SS_REQUIRE(w.dtype == DType::kBF16,
               what << ": a BF16 layer takes bf16 device weights, got " << dtype_name(w.dtype));
  }
  int64_t cols = w.k;
  DeviceBuffer slid;
  if (sparsity) {
    cols = sparsity->k_slide(w.k);
    if (!w.slid) {
      slid = DeviceBuffer(static_cast<size_t>(w.n) * static_cast<size_t>(cols) * elem);
      slide_weights_on_gpu(source, compute, w.n, w.k, *sparsity, slid.get(), stream, name);
      source = slid.get();
    }
  }
  DeviceBuffer padded_weight(static_cast<size_t>(n_gemm_) * static_cast<size_t>(k_gemm_) * elem);
  SS_CUDA_CHECK(cudaMemsetAsync(padded_weight.get(), 0, padded_weight.bytes(), stream));
  SS_CUDA_CHECK(cudaMemcpy2DAsync(padded_weight.get(), static_cast<size_t>(k_gemm_ * elem), source,
                                  static_cast<size_t>(cols * elem),
                                  static_cast<size_t>(cols * elem), static_cast<size_t>(w.n),
                                  cudaMemcpyDeviceToDevice, stream));
  if (quantized) {
    im.scale_per_channel = DeviceBuffer(static_cast<size_t>(n_gemm_) * sizeof(float));
    SS_CUDA_CHECK(
        cudaMemsetAsync(im.scale_per_channel.get(), 0, im.scale_per_channel.bytes(), stream));
    SS_CUDA_CHECK(cudaMemcpyAsync(im.scale_per_channel.get(), scales,
                                  static_cast<size_t>(w.n) * sizeof(float),
                                  cudaMemcpyDeviceToDevice, stream));
  }
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  slid = DeviceBuffer();
  codes = DeviceBuffer();
  im.weight = install_weight(std::move(padded_weight), sparsity.has_value(), compute, n_gemm_,
                             k_gemm_, stream, name);
  if (!bias.empty()) {
    im.has_bias = true;
    im.bias_f32 = upload(bias.data(), bias.size() * sizeof(float));
    const auto bias16 = padded<bf16_t>(to_bf16_vector(bias), n_gemm_);
    im.bias_bf16 = upload(bias16.data(), bias16.size() * sizeof(bf16_t));
  }
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
}

int64_t LinearLayer::gemm_m(int64_t m) const {
  if (backend_ == GemmBackend::kCusparseLt) return round_up(m, kSparseAlign);
  if (options_.compute == DType::kBF16) return m;
  return round_up(m, kDenseTokenAlign);
}

std::string LinearLayer::describe() const {
  std::ostringstream os;
  if (sparsity_)
    os << "SlideSparse " << sparsity_->name();
  else
    os << "dense";
  os << " " << dtype_name(options_.compute) << " n=" << n_ << " k=" << k_;
  if (sparsity_) os << " (K'=" << k_gemm_ << ")";
  os << " epilogue=" << epilogue_name(epilogue_);
  if (fast_accum_) os << " fast-accum";
  return os.str();
}

void LinearLayer::prepare(std::span<const int64_t> m_buckets) {
  Impl& im = *impl_;
  for (int64_t m : m_buckets) {
    SS_REQUIRE(m >= 1, describe() << ": M must be >= 1, got " << m);
    if (std::binary_search(im.bucket_ms.begin(), im.bucket_ms.end(), m)) continue;
    Bucket b;
    b.m = m;
    b.m_pad = gemm_m(m);
    GemmProblem p;
    p.backend = backend_;
    p.dtype = options_.compute;
    p.out_dtype = im.gemm_out;
    p.n = n_gemm_;
    p.k = k_gemm_;
    p.m = b.m_pad;
    p.ld_x = k_gemm_;
    p.ld_d = n_gemm_;
    p.scale_per_channel = im.fuse_scale_per_channel;
    p.scale_per_token = im.fuse_scale_per_token;
    p.bias = im.fuse_bias;
    p.fast_accum = fast_accum_;
    if (im.fuse_bias && backend_ == GemmBackend::kCusparseLt) p.sparse_bias = im.bias_bf16.get();
    b.choice.out_dtype = im.gemm_out;
    std::optional<GemmAlgorithm> algorithm;
    if (options_.algorithm) {
      algorithm = options_.algorithm;
      b.choice.forced = true;
    } else if (options_.use_tuning) {
      algorithm = lookup_tuned_gemm(gemm_problem_key(p));
      b.choice.tuned = algorithm.has_value() && !algorithm->is_default;
    }
    // A plan whose run() sets pointers in its descriptor is the layer's own, so that forward()
    // takes no lock; every other plan comes from the shared cache.
    auto make_plan = [&](const std::optional<GemmAlgorithm>& a) {
      return gemm_plan_has_run_pointers(p) ? make_exclusive_gemm_plan(p, a) : get_gemm_plan(p, a);
    };
    try {
      b.plan = make_plan(algorithm);
    } catch (const NotSupportedError& e) {
      // A table entry reused at an M it was not tuned for may be refused by the library: the
      // layer must still run, so fall back to the default and say so (a forced choice still
      // throws).
      if (!b.choice.tuned) throw;
      std::fprintf(stderr,
                   "slidesparse: tuned GEMM algorithm refused (%s); using the library default\n",
                   e.what());
      b.choice.tuned = false;
      b.plan = make_plan(std::nullopt);
    }
    b.choice.algorithm = b.plan->algorithm();
    auto kernel_config = [&](const char* kernel, int block, int64_t cols) {
      if (!options_.use_tuning) return KernelLaunchConfig{};
      return lookup_tuned_kernel(KernelProblemKey{kernel, options_.compute, block, cols, m})
          .value_or(KernelLaunchConfig{});
    };
    if (sparsity_)
      b.quant_config = options_.compute == DType::kBF16
                           ? kernel_config("slide", sparsity_->block(), k_)
                           : kernel_config("quant_slide", sparsity_->block(), k_);
    else if (options_.compute != DType::kBF16)
      b.quant_config = kernel_config("quant", 0, k_);
    b.dequant_config = kernel_config("dequant", 0, n_);
    const auto pos = std::lower_bound(im.bucket_ms.begin(), im.bucket_ms.end(), m);
    const auto index = pos - im.bucket_ms.begin();
    im.bucket_ms.insert(pos, m);
    im.buckets.insert(im.buckets.begin() + index, std::move(b));
  }
  size_t workspace = 0;
  for (Bucket& b : im.buckets) {
    workspace = std::max(workspace, b.plan->workspace_size());
    b.workspace_upto = workspace;
  }
}

const std::vector<int64_t>& LinearLayer::prepared_buckets() const { return impl_->bucket_ms; }

const LinearLayer::Bucket& LinearLayer::bucket_for(int64_t m) const {
  const Impl& im = *impl_;
  const auto pos = std::lower_bound(im.bucket_ms.begin(), im.bucket_ms.end(), m);
  if (m < 1 || pos == im.bucket_ms.end()) {
    std::ostringstream os;
    os << describe() << ": M=" << m
       << (m < 1 ? " must be >= 1" : " is above every prepared M bucket")
       << " (prepared: " << list_ms(im.bucket_ms) << ")";
    throw Error(os.str());
  }
  return im.buckets[static_cast<size_t>(pos - im.bucket_ms.begin())];
}

int64_t LinearLayer::bucket(int64_t m) const { return bucket_for(m).m; }
int64_t LinearLayer::padded_m(int64_t m) const { return bucket_for(m).m_pad; }
GemmChoice LinearLayer::gemm_choice(int64_t m) const { return bucket_for(m).choice; }

LinearLayer::ScratchLayout LinearLayer::layout_for(const Bucket& b) const {
  const Impl& im = *impl_;
  const size_t rows = static_cast<size_t>(b.m_pad);
  ScratchLayout l;
  // Activations: every layer can need them (dense BF16 stages x below its bucket's M).
  l.activations_bytes =
      rows * static_cast<size_t>(k_gemm_) * static_cast<size_t>(dtype_size(options_.compute));
  l.token_scales_bytes = options_.compute != DType::kBF16 ? rows * sizeof(float) : 0;
  l.acc_bytes = rows * static_cast<size_t>(n_gemm_) * static_cast<size_t>(dtype_size(im.gemm_out));
  l.workspace_bytes = b.workspace_upto;
  size_t offset = 0;
  l.activations = offset;
  offset += align_up(l.activations_bytes);
  l.token_scales = offset;
  offset += align_up(l.token_scales_bytes);
  l.acc = offset;
  offset += align_up(l.acc_bytes);
  l.workspace = offset;
  offset += align_up(l.workspace_bytes);
  l.total = offset;
  return l;
}

size_t LinearLayer::workspace_bytes(int64_t m_max) const {
  return layout_for(bucket_for(m_max)).total;
}

namespace {

void require_scratch(const LinearLayer& layer, LinearScratch scratch, size_t needed, int64_t m) {
  SS_REQUIRE(scratch.bytes >= needed && (needed == 0 || scratch.data != nullptr),
             layer.describe() << ": M=" << m << " needs " << needed
                              << " bytes of scratch (workspace_bytes), got " << scratch.bytes);
}

}  // namespace

void LinearLayer::quantize(cudaStream_t stream, const void* x, int64_t m,
                           LinearScratch scratch) const {
  SS_REQUIRE(x != nullptr, describe() << ": x is null");
  const Bucket& b = bucket_for(m);
  const ScratchLayout l = layout_for(b);
  require_scratch(*this, scratch, l.total, m);
  void* act = at(scratch, l.activations);
  float* scales = static_cast<float*>(at(scratch, l.token_scales));
  const DType compute = options_.compute;
  if (sparsity_) {
    if (compute == DType::kBF16)
      launch_slide(x, DType::kBF16, m, k_, k_, *sparsity_, act, b.m_pad, stream, b.quant_config);
    else
      launch_quant_slide(x, DType::kBF16, m, k_, k_, *sparsity_, compute, act, b.m_pad, scales,
                         stream, b.quant_config);
    return;
  }
  if (compute == DType::kBF16) {
    // The GEMM reads x itself when its rows and K need no padding; else stage x with zeros.
    if (k_gemm_ != k_ || m != b.m_pad)
      launch_pad_copy_bf16(x, m, k_, k_, act, b.m_pad, k_gemm_, stream);
    return;
  }
  launch_quant(x, DType::kBF16, m, k_, k_, compute, act, b.m_pad, k_gemm_, scales, stream,
               b.quant_config);
}

const void* LinearLayer::run_gemm(cudaStream_t stream, const Bucket& b, const void* operand,
                                  const float* scale_per_token, int64_t m, const LinearOutput& out,
                                  LinearScratch scratch) const {
  const Impl& im = *impl_;
  const ScratchLayout l = layout_for(b);
  require_scratch(*this, scratch, l.total, m);
  SS_REQUIRE(out.y != nullptr, describe() << ": y is null");
  const int64_t ld_y = out.ld_y > 0 ? out.ld_y : n_;
  const bool straight_to_y = !im.dequant_kernel && b.m_pad == m && n_gemm_ == n_ &&
                             out.residual == nullptr && ld_y == n_gemm_;
  GemmArgs args;
  args.weight = im.weight.get();
  args.x = operand;
  args.d = straight_to_y ? out.y : at(scratch, l.acc);
  args.scale_per_channel = im.scale_per_channel.as<float>();
  args.scale_per_token = scale_per_token;
  args.bias = im.fuse_bias ? im.bias_bf16.get() : nullptr;
  args.workspace = at(scratch, l.workspace);
  args.workspace_bytes = l.workspace_bytes;
  b.plan->run(args, stream);
  return args.d;
}

void LinearLayer::run_epilogue(cudaStream_t stream, const Bucket& b, const float* scale_per_token,
                               int64_t m, const LinearOutput& out, LinearScratch scratch) const {
  const Impl& im = *impl_;
  const ScratchLayout l = layout_for(b);
  SS_REQUIRE(out.y != nullptr, describe() << ": y is null");
  const int64_t ld_y = out.ld_y > 0 ? out.ld_y : n_;
  const int64_t ld_residual = out.ld_residual > 0 ? out.ld_residual : n_;
  SS_REQUIRE(ld_y >= n_, describe() << ": ld_y " << ld_y << " is smaller than n " << n_);
  const void* acc = at(scratch, l.acc);
  if (im.dequant_kernel) {
    const bool quantized = options_.compute != DType::kBF16;
    const float* s_w =
        quantized && !im.fuse_scale_per_channel ? im.scale_per_channel.as<float>() : nullptr;
    launch_dequant(acc, im.gemm_out, m, n_, n_gemm_, quantized ? scale_per_token : nullptr, s_w,
                   im.has_bias ? im.bias_f32.as<float>() : nullptr, out.residual, ld_residual,
                   out.y, ld_y, stream, b.dequant_config);
    return;
  }
  if (out.residual != nullptr) {  // the library's bf16 y in scratch, plus the residual
    launch_dequant(acc, im.gemm_out, m, n_, n_gemm_, nullptr, nullptr, nullptr, out.residual,
                   ld_residual, out.y, ld_y, stream, b.dequant_config);
    return;
  }
  const bool straight_to_y = b.m_pad == m && n_gemm_ == n_ && ld_y == n_gemm_;
  if (!straight_to_y) {  // fused, but the GEMM wrote padded rows / columns
    SS_CUDA_CHECK(cudaMemcpy2DAsync(out.y, static_cast<size_t>(ld_y) * 2, acc,
                                    static_cast<size_t>(n_gemm_) * 2, static_cast<size_t>(n_) * 2,
                                    static_cast<size_t>(m), cudaMemcpyDeviceToDevice, stream));
  }
}

void LinearLayer::gemm(cudaStream_t stream, const void* x, int64_t m, const LinearOutput& out,
                       LinearScratch scratch) const {
  const Bucket& b = bucket_for(m);
  const ScratchLayout l = layout_for(b);
  const bool reads_x =
      !sparsity_ && options_.compute == DType::kBF16 && k_gemm_ == k_ && m == b.m_pad;
  SS_REQUIRE(!reads_x || x != nullptr, describe() << ": x is null");
  const void* operand = reads_x ? x : at(scratch, l.activations);
  run_gemm(stream, b, operand, static_cast<const float*>(at(scratch, l.token_scales)), m, out,
           scratch);
}

void LinearLayer::dequant(cudaStream_t stream, int64_t m, const LinearOutput& out,
                          LinearScratch scratch) const {
  const Bucket& b = bucket_for(m);
  const ScratchLayout l = layout_for(b);
  require_scratch(*this, scratch, l.total, m);
  run_epilogue(stream, b, static_cast<const float*>(at(scratch, l.token_scales)), m, out, scratch);
}

void LinearLayer::forward(cudaStream_t stream, const void* x, int64_t m, const LinearOutput& out,
                          LinearScratch scratch) const {
  SS_REQUIRE(out.y != nullptr, describe() << ": y is null");
  quantize(stream, x, m, scratch);
  gemm(stream, x, m, out, scratch);
  dequant(stream, m, out, scratch);
}

void LinearLayer::forward_quantized(cudaStream_t stream, const QuantizedActivations& x, int64_t m,
                                    const LinearOutput& out, LinearScratch scratch) const {
  SS_REQUIRE(x.codes != nullptr, describe() << ": quantised activations are null");
  SS_REQUIRE(options_.compute == DType::kBF16 || x.scale_per_token != nullptr,
             describe() << ": quantised activations need per-token scales");
  const Bucket& b = bucket_for(m);
  run_gemm(stream, b, x.codes, x.scale_per_token, m, out, scratch);
  run_epilogue(stream, b, x.scale_per_token, m, out, scratch);
}

AccumulatorView LinearLayer::accumulator(int64_t m, LinearScratch scratch) const {
  const Bucket& b = bucket_for(m);
  AccumulatorView v;
  v.data = at(scratch, layout_for(b).acc);
  v.dtype = impl_->gemm_out;
  v.rows = b.m_pad;
  v.ld = n_gemm_;
  return v;
}

const float* LinearLayer::scale_per_token(int64_t m, LinearScratch scratch) const {
  if (options_.compute == DType::kBF16) return nullptr;
  return static_cast<const float*>(at(scratch, layout_for(bucket_for(m)).token_scales));
}

size_t LinearLayer::device_bytes() const {
  const Impl& im = *impl_;
  return im.weight.bytes() + im.scale_per_channel.bytes() + im.bias_f32.bytes() +
         im.bias_bf16.bytes();
}

Linear::Linear(const HostWeight& weight, std::span<const float> bias, LinearOptions options)
    : LinearLayer(weight, bias, std::move(options), std::nullopt) {}

Linear::Linear(const DeviceWeight& weight, const float* device_bias, LinearOptions options,
               cudaStream_t stream)
    : LinearLayer(weight, device_bias, std::move(options), std::nullopt, stream) {}

SlideSparseLinear::SlideSparseLinear(const HostWeight& weight, Sparsity sparsity,
                                     std::span<const float> bias, LinearOptions options)
    : LinearLayer(weight, bias, std::move(options), sparsity) {}

SlideSparseLinear::SlideSparseLinear(const DeviceWeight& weight, Sparsity sparsity,
                                     const float* device_bias, LinearOptions options,
                                     cudaStream_t stream)
    : LinearLayer(weight, device_bias, std::move(options), sparsity, stream) {}

}  // namespace slidesparse
