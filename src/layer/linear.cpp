// LinearLayer: weight preparation on the host (quantise per channel, slide, pad), upload (and for
// SlideSparse the GPU 2:4 check + compression), then the three stages per forward. The GEMM plan
// per padded M comes from the process-wide cache; buffers only grow, in prepare().
#include "slidesparse/layer/linear.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <vector>

#include "cuda/check.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "gemm/cublaslt_gemm.h"
#include "gemm/gemm_op.h"
#include "kernels/dequant.h"
#include "kernels/quant.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
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

// Quantised (or bf16) weight rows [n, cols] on the host, plus per-channel scales.
struct HostCodes {
  std::vector<uint8_t> bytes;  // n * cols * element size
  std::vector<float> scales;   // [n], empty for BF16
  int64_t cols = 0;
};

template <class T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<float> weight_as_float(const HostWeight& w) {
  const size_t count = static_cast<size_t>(w.n) * static_cast<size_t>(w.k);
  if (w.dtype == DType::kF32) {
    const auto* p = static_cast<const float*>(w.data);
    return std::vector<float>(p, p + count);
  }
  const auto* p = static_cast<const bf16_t*>(w.data);
  return to_float_vector(std::span<const bf16_t>(p, count));
}

// The weight in the compute dtype, [n, k] (not slid), with its scales.
HostCodes codes_for(const HostWeight& w, DType compute, const char* what) {
  HostCodes out;
  out.cols = w.k;
  const size_t count = static_cast<size_t>(w.n) * static_cast<size_t>(w.k);
  const bool full_precision = w.dtype == DType::kF32 || w.dtype == DType::kBF16;
  if (full_precision) {
    if (compute == DType::kBF16) {
      if (w.dtype == DType::kBF16) {
        const auto* p = static_cast<const uint8_t*>(w.data);
        out.bytes.assign(p, p + count * 2);
      } else {
        out.bytes = as_bytes(to_bf16_vector(weight_as_float(w)));
      }
      return out;
    }
    const std::vector<float> f = weight_as_float(w);
    if (compute == DType::kI8) {
      auto q = quantize_rows_int8(f, w.n, w.k);
      out.bytes = as_bytes(q.codes);
      out.scales = std::move(q.scales);
    } else {
      auto q = quantize_rows_e4m3(f, w.n, w.k);
      out.bytes = as_bytes(q.codes);
      out.scales = std::move(q.scales);
    }
    return out;
  }
  SS_REQUIRE(w.dtype == compute, what << ": weight codes are " << dtype_name(w.dtype)
                                      << " but the layer computes in " << dtype_name(compute));
  SS_REQUIRE(static_cast<int64_t>(w.scale_per_channel.size()) == w.n,
             what << ": " << dtype_name(w.dtype) << " codes need " << w.n
                  << " per-channel scales, got " << w.scale_per_channel.size());
  const auto* p = static_cast<const uint8_t*>(w.data);
  out.bytes.assign(p, p + count);
  out.scales.assign(w.scale_per_channel.begin(), w.scale_per_channel.end());
  return out;
}

// Copies rows [n, cols] into a zeroed [n_pad, cols_pad] host buffer.
std::vector<uint8_t> pad_rows(const std::vector<uint8_t>& src, int64_t n, int64_t cols,
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

struct LinearLayer::Impl {
  struct PlanEntry {
    std::shared_ptr<const GemmPlan> plan;
    GemmChoice choice;
  };

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

  DeviceBuffer activations;   // [m_cap, k_gemm]: quantised / lifted / staged x
  DeviceBuffer token_scales;  // [m_cap]
  DeviceBuffer acc;           // [m_cap, n_gemm] GEMM output when it is not y itself
  DeviceBuffer workspace;
  int64_t m_capacity = 0;
  const void* x_operand = nullptr;     // the GEMM's x for the current forward
  std::map<int64_t, PlanEntry> plans;  // by padded M
};

LinearLayer::~LinearLayer() = default;
LinearLayer::LinearLayer(LinearLayer&&) noexcept = default;
LinearLayer& LinearLayer::operator=(LinearLayer&&) noexcept = default;

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
  SS_REQUIRE_T(
      NotSupportedError,
      compute == DType::kI8 || compute == DType::kFP8E4M3 || compute == DType::kBF16,
      what << ": compute dtype " << dtype_name(compute) << " is not supported (int8, fp8, bf16)");
  SS_REQUIRE(w.n > 0 && w.k > 0, what << ": empty weight [" << w.n << ", " << w.k << "]");
  SS_REQUIRE(w.data != nullptr, what << ": weight data is null");
  SS_REQUIRE(bias.empty() || static_cast<int64_t>(bias.size()) == w.n,
             what << ": bias has " << bias.size() << " elements, expected " << w.n << " or none");
  SS_REQUIRE(!w.slid || sparsity, what << ": slid codes need a SlideSparse layer");
  SS_REQUIRE(
      !w.slid || (w.dtype != DType::kF32 && w.dtype != DType::kBF16) || compute == DType::kBF16,
      what << ": a slid weight must be codes in the compute dtype (or bf16 for BF16)");
  require_dtype_supported(compute);
#ifndef SLIDESPARSE_HAVE_CUSPARSELT
  if (sparsity)
    throw NotSupportedError(std::string(what) +
                            ": this build has no cuSPARSELt (sparse backend not built)");
#endif

  Impl& im = *impl_;
  const bool quantized = compute != DType::kBF16;
  const bool fused = options_.epilogue == Epilogue::kFused;
  // What the GEMM writes and who applies scales / bias (see Epilogue in linear.h).
  if (!fused || (!sparsity && compute == DType::kI8)) {
    epilogue_ = Epilogue::kKernel;
    if (fused) epilogue_note_ = "cuBLASLt INT8 (int32 output) has no scale/bias epilogue";
    im.gemm_out = compute == DType::kI8        ? DType::kI32
                  : compute == DType::kFP8E4M3 ? DType::kF32
                                               : DType::kBF16;
    im.dequant_kernel = true;
  } else {
    epilogue_ = Epilogue::kFused;
    im.gemm_out = DType::kBF16;
    if (!sparsity) {  // cuBLASLt: FP8 takes everything, BF16 the bias
      im.fuse_scale_per_channel = quantized;
      im.fuse_scale_per_token = quantized;
      im.fuse_bias = !bias.empty();
      im.dequant_kernel = false;
      GemmProblem probe;
      probe.backend = GemmBackend::kCublasLt;
      probe.dtype = compute;
      probe.out_dtype = DType::kBF16;
      probe.scale_per_channel = im.fuse_scale_per_channel;
      probe.scale_per_token = im.fuse_scale_per_token;
      probe.bias = im.fuse_bias;
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
      im.fuse_bias = !bias.empty();
      im.dequant_kernel = false;
    }
  }

  // Host weight in the compute dtype, then slid (SlideSparse) and padded.
  const int64_t elem = dtype_size(compute);
  HostCodes codes;
  if (w.slid) {
    const int64_t k_slide = sparsity->k_slide(w.k);
    SS_REQUIRE(w.dtype == compute, what << ": slid codes are " << dtype_name(w.dtype)
                                        << ", the layer computes in " << dtype_name(compute));
    SS_REQUIRE(!quantized || static_cast<int64_t>(w.scale_per_channel.size()) == w.n,
               what << ": slid codes need " << w.n << " per-channel scales, got "
                    << w.scale_per_channel.size());
    const auto* p = static_cast<const uint8_t*>(w.data);
    codes.bytes.assign(p, p + static_cast<size_t>(w.n) * k_slide * elem);
    codes.scales.assign(w.scale_per_channel.begin(), w.scale_per_channel.end());
    codes.cols = k_slide;
  } else {
    codes = codes_for(w, compute, what);
    if (sparsity) {
      // slide_weights throws PatternError naming row and block when W is not Z:L.
      switch (compute) {
        case DType::kI8: {
          std::span<const int8_t> in(reinterpret_cast<const int8_t*>(codes.bytes.data()),
                                     codes.bytes.size());
          codes.bytes = as_bytes(slide_weights<int8_t>(in, w.n, w.k, *sparsity));
          break;
        }
        case DType::kFP8E4M3: {
          std::span<const fp8_e4m3_t> in(reinterpret_cast<const fp8_e4m3_t*>(codes.bytes.data()),
                                         codes.bytes.size());
          codes.bytes = as_bytes(slide_weights<fp8_e4m3_t>(in, w.n, w.k, *sparsity));
          break;
        }
        default: {
          std::span<const bf16_t> in(reinterpret_cast<const bf16_t*>(codes.bytes.data()),
                                     codes.bytes.size() / 2);
          codes.bytes = as_bytes(slide_weights<bf16_t>(in, w.n, w.k, *sparsity));
          break;
        }
      }
      codes.cols = sparsity->k_slide(w.k);
    }
  }

  if (sparsity) {
    n_gemm_ = round_up(n_, kSparseAlign);
    k_gemm_ = sparsity->k_slide(k_);
  } else {
    n_gemm_ = round_up(n_, kDenseRowAlign);
    k_gemm_ = round_up(k_, quantized ? 16 : 8);
  }
  const std::vector<uint8_t> host = pad_rows(codes.bytes, n_, codes.cols, n_gemm_, k_gemm_, elem);
  codes.bytes.clear();
  codes.bytes.shrink_to_fit();

#ifdef SLIDESPARSE_HAVE_CUSPARSELT
  if (sparsity) {
    DeviceBuffer dense = upload(host.data(), host.size());
    CudaStream stream;
    CompressedWeight compressed =
        compress_sparse_weight(compute, n_gemm_, k_gemm_, dense.get(), stream.get(),
                               std::string(what) + " " + sparsity->name());
    im.weight = std::move(compressed.data);
  }
#endif
  if (!sparsity) im.weight = upload(host.data(), host.size());

  if (quantized) {
    const auto scales = padded<float>(codes.scales, n_gemm_);
    im.scale_per_channel = upload(scales.data(), scales.size() * sizeof(float));
  }
  if (!bias.empty()) {
    im.has_bias = true;
    im.bias_f32 = upload(bias.data(), bias.size() * sizeof(float));
    const auto bias16 = padded<bf16_t>(to_bf16_vector(bias), n_gemm_);
    im.bias_bf16 = upload(bias16.data(), bias16.size() * sizeof(bf16_t));
  }
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
  return os.str();
}

void LinearLayer::prepare(int64_t m) {
  SS_REQUIRE(m >= 1, describe() << ": M must be >= 1, got " << m);
  Impl& im = *impl_;
  const int64_t m_gemm = gemm_m(m);
  if (im.plans.find(m_gemm) == im.plans.end()) {
    GemmProblem p;
    p.backend = backend_;
    p.dtype = options_.compute;
    p.out_dtype = im.gemm_out;
    p.n = n_gemm_;
    p.k = k_gemm_;
    p.m = m_gemm;
    p.ld_x = k_gemm_;
    p.ld_d = n_gemm_;
    p.scale_per_channel = im.fuse_scale_per_channel;
    p.scale_per_token = im.fuse_scale_per_token;
    p.bias = im.fuse_bias;
    if (im.fuse_bias && backend_ == GemmBackend::kCusparseLt) p.sparse_bias = im.bias_bf16.get();
    GemmChoice choice;
    choice.out_dtype = im.gemm_out;
    std::optional<GemmAlgorithm> algorithm;
    if (options_.algorithm) {
      algorithm = options_.algorithm;
      choice.forced = true;
    } else if (options_.use_tuning) {
      algorithm = lookup_tuned_gemm(gemm_problem_key(p));
      choice.tuned = algorithm.has_value() && !algorithm->is_default;
    }
    std::shared_ptr<const GemmPlan> plan;
    try {
      plan = get_gemm_plan(p, algorithm);
    } catch (const NotSupportedError& e) {
      // A table entry reused at an M it was not tuned for may be refused by the library: the
      // layer must still run, so fall back to the default and say so (a forced choice still
      // throws).
      if (!choice.tuned) throw;
      std::fprintf(stderr,
                   "slidesparse: tuned GEMM algorithm refused (%s); using the library default\n",
                   e.what());
      choice.tuned = false;
      plan = get_gemm_plan(p, std::nullopt);
    }
    choice.algorithm = plan->algorithm();
    im.plans.emplace(m_gemm, Impl::PlanEntry{std::move(plan), choice});
  }
  const auto& entry = im.plans.at(m_gemm);
  const bool grow = m_gemm > im.m_capacity;
  const bool grow_ws = entry.plan->workspace_size() > im.workspace.bytes();
  if (!grow && !grow_ws) return;
  // Buffers may be in use by queued work: settle before freeing and re-zeroing them.
  SS_CUDA_CHECK(cudaDeviceSynchronize());
  if (grow_ws) im.workspace.reserve(entry.plan->workspace_size());
  if (grow) {
    // Dense BF16 with aligned K reads x itself and needs no staging buffer.
    const bool staged = sparsity_ || options_.compute != DType::kBF16 || k_gemm_ != k_;
    const size_t op_bytes = staged ? static_cast<size_t>(m_gemm) * static_cast<size_t>(k_gemm_) *
                                         static_cast<size_t>(dtype_size(options_.compute))
                                   : 1;
    im.activations.reserve(op_bytes);
    // Zero once: padding columns of staged bf16 x are never written again.
    SS_CUDA_CHECK(cudaMemset(im.activations.get(), 0, op_bytes));
    im.token_scales.reserve(static_cast<size_t>(m_gemm) * sizeof(float));
    SS_CUDA_CHECK(
        cudaMemset(im.token_scales.get(), 0, static_cast<size_t>(m_gemm) * sizeof(float)));
    im.acc.reserve(static_cast<size_t>(m_gemm) * static_cast<size_t>(n_gemm_) *
                   static_cast<size_t>(dtype_size(im.gemm_out)));
    im.m_capacity = m_gemm;
    SS_CUDA_CHECK(cudaDeviceSynchronize());
  }
}

GemmChoice LinearLayer::gemm_choice(int64_t m) {
  prepare(m);
  return impl_->plans.at(gemm_m(m)).choice;
}

void LinearLayer::quantize(cudaStream_t stream, const void* x, int64_t m) {
  SS_REQUIRE(x != nullptr, describe() << ": x is null");
  prepare(m);
  Impl& im = *impl_;
  const int64_t m_gemm = gemm_m(m);
  const DType compute = options_.compute;
  auto kernel_config = [&](const char* kernel, int block, int64_t cols) {
    if (!options_.use_tuning) return KernelLaunchConfig{};
    return lookup_tuned_kernel(KernelProblemKey{kernel, compute, block, cols, m})
        .value_or(KernelLaunchConfig{});
  };
  if (sparsity_) {
    if (compute == DType::kBF16) {
      launch_slide(x, DType::kBF16, m, k_, k_, *sparsity_, im.activations.get(), m_gemm, stream,
                   kernel_config("slide", sparsity_->block(), k_));
    } else {
      launch_quant_slide(x, DType::kBF16, m, k_, k_, *sparsity_, compute, im.activations.get(),
                         m_gemm, im.token_scales.as<float>(), stream,
                         kernel_config("quant_slide", sparsity_->block(), k_));
    }
    im.x_operand = im.activations.get();
    return;
  }
  if (compute == DType::kBF16) {
    if (k_gemm_ == k_) {
      im.x_operand = x;  // the GEMM reads x itself
    } else {
      // Rows of k bf16 into rows of k_gemm (the zero padding was written in prepare).
      SS_CUDA_CHECK(cudaMemcpy2DAsync(im.activations.get(), static_cast<size_t>(k_gemm_) * 2, x,
                                      static_cast<size_t>(k_) * 2, static_cast<size_t>(k_) * 2,
                                      static_cast<size_t>(m), cudaMemcpyDeviceToDevice, stream));
      im.x_operand = im.activations.get();
    }
    return;
  }
  launch_quant(x, DType::kBF16, m, k_, k_, compute, im.activations.get(), m_gemm, k_gemm_,
               im.token_scales.as<float>(), stream, kernel_config("quant", 0, k_));
  im.x_operand = im.activations.get();
}

void LinearLayer::gemm(cudaStream_t stream, int64_t m, void* y) {
  Impl& im = *impl_;
  SS_REQUIRE(im.x_operand != nullptr, describe() << ": gemm() before quantize()");
  prepare(m);
  const int64_t m_gemm = gemm_m(m);
  const auto& entry = im.plans.at(m_gemm);
  const bool straight_to_y = !im.dequant_kernel && m_gemm == m && n_gemm_ == n_;
  SS_REQUIRE(!straight_to_y || y != nullptr, describe() << ": y is null");
  GemmArgs args;
  args.weight = im.weight.get();
  args.x = im.x_operand;
  args.d = straight_to_y ? y : im.acc.get();
  args.scale_per_channel = im.scale_per_channel.as<float>();
  args.scale_per_token = im.token_scales.as<float>();
  args.bias = im.fuse_bias ? im.bias_bf16.get() : nullptr;
  args.workspace = im.workspace.get();
  args.workspace_bytes = im.workspace.bytes();
  entry.plan->run(args, stream);
}

void LinearLayer::dequant(cudaStream_t stream, int64_t m, void* y) {
  Impl& im = *impl_;
  SS_REQUIRE(y != nullptr, describe() << ": y is null");
  const int64_t m_gemm = gemm_m(m);
  SS_REQUIRE(m_gemm <= im.m_capacity, describe() << ": dequant() before gemm() for M=" << m);
  if (im.dequant_kernel) {
    const bool quantized = options_.compute != DType::kBF16;
    KernelLaunchConfig config;
    if (options_.use_tuning)
      config = lookup_tuned_kernel(KernelProblemKey{"dequant", options_.compute, 0, n_, m})
                   .value_or(KernelLaunchConfig{});
    const float* s_w =
        quantized && !im.fuse_scale_per_channel ? im.scale_per_channel.as<float>() : nullptr;
    launch_dequant(im.acc.get(), im.gemm_out, m, n_, n_gemm_,
                   quantized ? im.token_scales.as<float>() : nullptr, s_w,
                   im.has_bias ? im.bias_f32.as<float>() : nullptr, y, n_, stream, config);
    return;
  }
  if (m_gemm != m || n_gemm_ != n_) {  // fused, but the GEMM wrote padded rows / columns
    SS_CUDA_CHECK(cudaMemcpy2DAsync(y, static_cast<size_t>(n_) * 2, im.acc.get(),
                                    static_cast<size_t>(n_gemm_) * 2, static_cast<size_t>(n_) * 2,
                                    static_cast<size_t>(m), cudaMemcpyDeviceToDevice, stream));
  }
}

void LinearLayer::forward(cudaStream_t stream, const void* x, int64_t m, void* y) {
  quantize(stream, x, m);
  gemm(stream, m, y);
  dequant(stream, m, y);
}

AccumulatorView LinearLayer::accumulator(int64_t m) const {
  AccumulatorView v;
  v.data = impl_->acc.get();
  v.dtype = impl_->gemm_out;
  v.rows = gemm_m(m);
  v.ld = n_gemm_;
  return v;
}

const float* LinearLayer::scale_per_token() const {
  return options_.compute == DType::kBF16 ? nullptr : impl_->token_scales.as<float>();
}

size_t LinearLayer::device_bytes() const {
  const Impl& im = *impl_;
  return im.weight.bytes() + im.scale_per_channel.bytes() + im.bias_f32.bytes() +
         im.bias_bf16.bytes() + im.activations.bytes() + im.token_scales.bytes() + im.acc.bytes() +
         im.workspace.bytes();
}

Linear::Linear(const HostWeight& weight, std::span<const float> bias, LinearOptions options)
    : LinearLayer(weight, bias, std::move(options), std::nullopt) {}

SlideSparseLinear::SlideSparseLinear(const HostWeight& weight, Sparsity sparsity,
                                     std::span<const float> bias, LinearOptions options)
    : LinearLayer(weight, bias, std::move(options), sparsity) {}

}  // namespace slidesparse
