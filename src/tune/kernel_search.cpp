// Launch-configuration search (see kernel_search.h). A configuration the launcher rejects is
// skipped; one whose output differs from the default launch's is dropped and counted.
#include "tune/kernel_search.h"

#include <algorithm>
#include <vector>

#include "cuda/check.h"
#include "cuda/timing.h"
#include "kernels/dequant.h"
#include "kernels/quant.h"
#include "kernels/random_fill.h"

namespace slidesparse {

namespace {

int64_t round_up(int64_t v, int64_t multiple) { return (v + multiple - 1) / multiple * multiple; }

// The layer pads 8-bit dense tokens to 16 and sparse ones to 32 (src/layer/linear.cpp).
int64_t padded_m(const KernelJobSpec& spec, int64_t m) {
  if (spec.kernel == "quant") return round_up(m, 16);
  if (spec.kernel == "quant_slide" || spec.kernel == "slide") return round_up(m, 32);
  return m;
}

DType accumulator_dtype(DType compute) {
  return compute == DType::kI8        ? DType::kI32
         : compute == DType::kFP8E4M3 ? DType::kF32
                                      : DType::kBF16;
}

}  // namespace

KernelProblemKey kernel_problem_key(const KernelJobSpec& spec, int64_t m) {
  KernelProblemKey key;
  key.kernel = spec.kernel;
  key.dtype = spec.compute;
  key.block = spec.sparsity ? spec.sparsity->block() : 0;
  key.cols = spec.cols;
  key.m = m;
  return key;
}

KernelOperands::KernelOperands(const KernelJobSpec& spec, int64_t m_max, uint64_t seed,
                               cudaStream_t stream)
    : spec_(spec) {
  const bool lifts = spec.kernel == "quant_slide" || spec.kernel == "slide";
  SS_REQUIRE(
      spec.kernel == "quant" || lifts || spec.kernel == "dequant",
      "kernel tuning: unknown kernel '" << spec.kernel << "' (quant, quant_slide, slide, dequant)");
  SS_REQUIRE(!lifts || spec.sparsity, "kernel tuning: " << spec.kernel << " needs a sparsity");
  SS_REQUIRE(spec.cols > 0 && m_max > 0, "kernel tuning: empty problem");
  const int64_t m_pad = padded_m(spec, m_max);
  if (spec.kernel == "dequant") {
    k_out_ = spec.cols;
    const size_t count = static_cast<size_t>(m_max) * static_cast<size_t>(spec.cols);
    const DType acc = accumulator_dtype(spec.compute);
    in_ = DeviceBuffer(count * static_cast<size_t>(dtype_size(acc)));
    // int32 accumulators: random 32-bit patterns read as int32 are as good as any.
    fill_random(in_.get(), acc == DType::kBF16 ? DType::kBF16 : DType::kF32,
                static_cast<int64_t>(count), seed, stream, 1000.0f);
    scale_per_channel_ = DeviceBuffer(static_cast<size_t>(spec.cols) * sizeof(float));
    fill_random(scale_per_channel_.get(), DType::kF32, spec.cols, seed + 1, stream, 1e-3f);
    bias_ = DeviceBuffer(static_cast<size_t>(spec.cols) * sizeof(float));
    fill_random(bias_.get(), DType::kF32, spec.cols, seed + 2, stream);
    for (auto& s : scales_) {
      s = DeviceBuffer(static_cast<size_t>(m_max) * sizeof(float));
      fill_random(s.get(), DType::kF32, m_max, seed + 3, stream, 1e-3f);
    }
    for (auto& o : out_) o = DeviceBuffer(count * 2);
  } else {
    const bool quantized = spec.kernel != "slide";
    k_out_ = lifts ? spec.sparsity->k_slide(spec.cols) : round_up(spec.cols, 16);
    const size_t x_count = static_cast<size_t>(m_max) * static_cast<size_t>(spec.cols);
    in_ = DeviceBuffer(x_count * 2);
    fill_random(in_.get(), DType::kBF16, static_cast<int64_t>(x_count), seed, stream, 4.0f);
    const size_t out_elem = quantized ? 1 : 2;
    for (auto& o : out_) {
      o = DeviceBuffer(static_cast<size_t>(m_pad) * static_cast<size_t>(k_out_) * out_elem);
    }
    for (auto& s : scales_) s = DeviceBuffer(static_cast<size_t>(m_pad) * sizeof(float));
  }
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
}

int64_t KernelOperands::out_bytes(int64_t m) const {
  if (spec_.kernel == "dequant") return m * k_out_ * 2;
  const int64_t elem = spec_.kernel == "slide" ? 2 : 1;
  return padded_m(spec_, m) * k_out_ * elem;
}

void KernelOperands::launch(int64_t m, KernelLaunchConfig config, int which, cudaStream_t stream) {
  void* out = out_[which].get();
  float* scales = scales_[which].as<float>();
  const int64_t m_pad = padded_m(spec_, m);
  const int64_t k = spec_.cols;
  if (spec_.kernel == "quant") {
    launch_quant(in_.get(), DType::kBF16, m, k, k, spec_.compute, out, m_pad, k_out_, scales,
                 stream, config);
  } else if (spec_.kernel == "quant_slide") {
    launch_quant_slide(in_.get(), DType::kBF16, m, k, k, *spec_.sparsity, spec_.compute, out, m_pad,
                       scales, stream, config);
  } else if (spec_.kernel == "slide") {
    launch_slide(in_.get(), DType::kBF16, m, k, k, *spec_.sparsity, out, m_pad, stream, config);
  } else {
    launch_dequant(in_.get(), accumulator_dtype(spec_.compute), m, k, k, scales_[0].as<float>(),
                   spec_.compute == DType::kBF16 ? nullptr : scale_per_channel_.as<float>(),
                   bias_.as<float>(), out, k, stream, config);
  }
}

bool KernelOperands::outputs_equal(int64_t m, cudaStream_t stream) const {
  // Byte equality through the int32 view (every output size here is a multiple of 4 bytes;
  // an odd tail is compared as bf16 pairs would be, so fall back to bytes on the host).
  const int64_t bytes = out_bytes(m);
  if (bytes % 4 == 0) {
    return relative_difference(out_[0].get(), out_[1].get(), DType::kI32, bytes / 4, stream) == 0.0;
  }
  std::vector<uint8_t> a(static_cast<size_t>(bytes)), b(static_cast<size_t>(bytes));
  SS_CUDA_CHECK(cudaMemcpyAsync(a.data(), out_[0].get(), a.size(), cudaMemcpyDeviceToHost, stream));
  SS_CUDA_CHECK(cudaMemcpyAsync(b.data(), out_[1].get(), b.size(), cudaMemcpyDeviceToHost, stream));
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  return a == b;
}

KernelSearchResult search_kernel(KernelOperands& operands, int64_t m, cudaStream_t stream) {
  KernelSearchResult result;
  const KernelJobSpec& spec = operands.spec();
  auto time_config = [&](KernelLaunchConfig config, int which, int reps) {
    const TimingResult t = time_one(
        stream, [&](int) { operands.launch(m, config, which, stream); }, TimingOptions{1, reps});
    return 1000.0 * t.median_ms;
  };

  const double first = time_config({}, 0, 3);
  const int reps = first > 1000 ? 5 : (first > 100 ? 10 : 30);
  result.default_us = time_config({}, 0, reps);

  // Candidates the launcher accepts for this row length.
  std::vector<KernelLaunchConfig> candidates;
  for (int threads : {32, 64, 128, 256, 512, 1024}) {
    for (int rows : {1, 2, 4, 8, 16}) {
      const KernelLaunchConfig c{threads, rows};
      try {
        const KernelLaunchConfig resolved = spec.kernel == "dequant"
                                                ? resolve_dequant_config(spec.cols, c)
                                                : resolve_quant_config(DType::kBF16, spec.cols, c);
        if (resolved == c) candidates.push_back(c);
      } catch (const Error&) {
      }
    }
  }

  struct Timed {
    KernelLaunchConfig config;
    double us;
  };
  std::vector<Timed> timed;
  for (const auto& c : candidates) {
    try {
      timed.push_back({c, time_config(c, 1, reps)});
      ++result.tried;
    } catch (const CudaError&) {
      cudaGetLastError();
    } catch (const Error&) {
      // rejected at launch (shared memory at this K): not a candidate here
    }
  }
  std::sort(timed.begin(), timed.end(), [](const Timed& a, const Timed& b) { return a.us < b.us; });
  if (timed.size() > 3) timed.resize(3);
  // Re-time the best three against the default, interleaved.
  std::vector<TimedFn> fns;
  fns.push_back([&](int) { operands.launch(m, {}, 0, stream); });
  for (size_t i = 0; i < timed.size(); ++i) {
    fns.push_back([&, i](int) { operands.launch(m, timed[i].config, 1, stream); });
  }
  const auto finals = time_interleaved(stream, fns, TimingOptions{1, 3 * reps});
  result.default_us = 1000.0 * finals[0].median_ms;
  result.best_us = result.default_us;
  operands.launch(m, {}, 0, stream);
  std::vector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < timed.size(); ++i) order.emplace_back(1000.0 * finals[i + 1].median_ms, i);
  std::sort(order.begin(), order.end());
  for (const auto& [us, i] : order) {
    if (us >= result.best_us) break;
    operands.launch(m, timed[i].config, 1, stream);
    if (!operands.outputs_equal(m, stream)) {
      ++result.mismatched;
      continue;
    }
    result.best = timed[i].config;
    result.best_us = us;
    break;
  }
  return result;
}

}  // namespace slidesparse
