// The kernel-level benchmark. Per dtype and linear: one dense layer and one SlideSparse layer per
// pattern, all alive together; per M every stage of every layer is one closure, and all closures
// are timed round-robin (interleaved) with CUDA events. Weights are random codes (for SlideSparse
// random 2:4 W' of width K', which is what the GEMM sees); x is random bf16, rotated when small.
#include "bench/kernel_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <sstream>

#include "cuda/check.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "cuda/timing.h"
#include "io/atomic_file.h"
#include "io/model_config.h"
#include "kernels/random_fill.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

// Each closure gets about this much GPU time per M (fewer repeats for huge M), and at least
// kMinRepeats runs.
constexpr double kBudgetMsPerClosure = 300.0;
constexpr int kMinRepeats = 10;

// Random non-zero codes of `dtype`, [rows, cols]; with `two_four` every group of 4 along a row
// holds exactly 2 non-zeros (a valid W').
std::vector<uint8_t> random_codes(DType dtype, int64_t rows, int64_t cols, bool two_four,
                                  uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t elem = dtype_size(dtype);
  std::vector<uint8_t> out(static_cast<size_t>(rows) * cols * elem, 0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // A small table of non-zero values per dtype keeps generation cheap for 100M+ elements.
  std::vector<uint16_t> table(256);
  for (auto& v : table) {
    float f = normal(rng);
    if (std::abs(f) < 0.05f) f = 0.5f;
    if (dtype == DType::kI8) {
      const long q = std::clamp(std::lround(f * 40.0f), -127L, 127L);
      v = static_cast<uint8_t>(static_cast<int8_t>(q == 0 ? 1 : q));
    }
    if (dtype == DType::kFP8E4M3) v = e4m3_from_float(f * 8.0f).bits;
    if (dtype == DType::kBF16) v = bf16_from_float(f * 0.05f).bits;
  }
  const size_t count = static_cast<size_t>(rows) * cols;
  uint64_t bits = rng();
  for (size_t i = 0; i < count; i += 4) {
    if ((i & 15) == 0) bits = rng();
    const unsigned r = static_cast<unsigned>(bits >> ((i & 12) * 4));
    // Two kept slots out of 4 (6 choices) when 2:4, else all four.
    static constexpr uint8_t kKeep[6] = {0x3, 0x5, 0x9, 0x6, 0xA, 0xC};
    const uint8_t keep = two_four ? kKeep[(r & 0xFF) % 6] : 0xF;
    for (size_t j = 0; j < 4 && i + j < count; ++j) {
      if (!(keep & (1u << j))) continue;
      const uint16_t v = table[((r >> (8 + 2 * j)) ^ (j * 37)) & 0xFF];
      if (elem == 1)
        out[i + j] = static_cast<uint8_t>(v);
      else
        std::memcpy(&out[(i + j) * 2], &v, 2);
    }
  }
  return out;
}

struct Variant {
  std::string name;  // "dense" or "2:8"
  std::unique_ptr<LinearLayer> layer;
  std::string skipped;
};

std::string iso_time_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::ostringstream os;
  os << std::put_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return os.str();
}

std::string fmt(double v, int precision = 3) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(precision) << v;
  return os.str();
}

nlohmann::json row_json(const KernelBenchRow& r) {
  nlohmann::json j;
  j["linear"] = r.linear;
  j["n"] = r.n;
  j["k"] = r.k;
  j["m"] = r.m;
  j["variant"] = r.variant;
  j["backend"] = std::string(backend_name(r.backend));
  j["gemm_k"] = r.gemm_k;
  j["gemm_out_dtype"] = std::string(dtype_name(r.gemm_out));
  j["epilogue"] = r.epilogue;
  if (!r.epilogue_note.empty()) j["epilogue_note"] = r.epilogue_note;
  j["algorithm"] = r.algorithm;
  j["quant_ms"] = r.times.quant_ms;
  j["gemm_ms"] = r.times.gemm_ms;
  j["dequant_ms"] = r.times.dequant_ms;
  j["layer_ms"] = r.times.total_ms;
  j["speedup_gemm"] = r.speedup_gemm;
  j["speedup_layer"] = r.speedup_total;
  if (!r.skipped.empty()) j["skipped"] = r.skipped;
  return j;
}

std::string csv(const std::vector<KernelBenchRow>& rows) {
  std::ostringstream os;
  os << "linear,n,k,m,variant,backend,gemm_k,gemm_out,epilogue,algorithm,quant_ms,gemm_ms,"
        "dequant_ms,layer_ms,speedup_gemm,speedup_layer,skipped\n";
  for (const auto& r : rows) {
    os << r.linear << "," << r.n << "," << r.k << "," << r.m << "," << r.variant << ","
       << backend_name(r.backend) << "," << r.gemm_k << "," << dtype_name(r.gemm_out) << ","
       << r.epilogue << ",\"" << r.algorithm << "\"," << fmt(r.times.quant_ms, 5) << ","
       << fmt(r.times.gemm_ms, 5) << "," << fmt(r.times.dequant_ms, 5) << ","
       << fmt(r.times.total_ms, 5) << "," << fmt(r.speedup_gemm, 4) << ","
       << fmt(r.speedup_total, 4) << ",\"" << r.skipped << "\"\n";
  }
  return os.str();
}

void print_sum_table(std::ostream& out, const KernelBenchResult& res,
                     const std::vector<std::string>& variants, const std::vector<int64_t>& ms) {
  std::map<std::pair<int64_t, std::string>, const KernelBenchRow*> sums;
  for (const auto& r : res.rows)
    if (r.linear == "sum") sums[{r.m, r.variant}] = &r;
  // Which output each side's GEMM writes (cuBLASLt's INT8 writes int32 only here, SlideSparse
  // may write bf16): the sums are only comparable knowing that.
  std::map<std::string, const KernelBenchRow*> first_row;
  for (const auto& r : res.rows)
    if (r.linear != "sum" && r.skipped.empty()) first_row.emplace(r.variant, &r);
  out << "\nGEMM outputs:";
  for (const auto& v : variants) {
    auto it = first_row.find(v);
    if (it == first_row.end()) continue;
    out << " " << v << " " << dtype_name(res.dtype) << "->" << dtype_name(it->second->gemm_out)
        << " (" << backend_name(it->second->backend) << ")" << (&v == &variants.back() ? "" : ";");
  }
  out << "; epilogue " << (first_row.empty() ? "-" : first_row.begin()->second->epilogue) << "\n";
  for (int pass = 0; pass < 2; ++pass) {
    out << "\n"
        << res.model << " " << dtype_name(res.dtype) << ", sum over qkv+o+gate_up+down, "
        << (pass == 0 ? "GEMM only" : "whole layer (quant + GEMM + dequant)")
        << ": ms (speed-up vs dense)\n";
    out << std::setw(7) << "M";
    for (const auto& v : variants) out << std::setw(v == "dense" ? 11 : 18) << v;
    out << "\n";
    for (int64_t m : ms) {
      out << std::setw(7) << m;
      for (const auto& v : variants) {
        auto it = sums.find({m, v});
        if (it == sums.end()) {
          out << std::setw(v == "dense" ? 11 : 18) << "-";
          continue;
        }
        const KernelBenchRow& r = *it->second;
        const double t = pass == 0 ? r.times.gemm_ms : r.times.total_ms;
        if (v == "dense") {
          out << std::setw(11) << fmt(t);
        } else {
          const double s = pass == 0 ? r.speedup_gemm : r.speedup_total;
          out << std::setw(10) << fmt(t) << " (" << fmt(s, 2) << "x)";
        }
      }
      out << "\n";
    }
  }
}

}  // namespace

std::vector<KernelBenchResult> run_kernel_bench(const KernelBenchOptions& opt_in,
                                                std::ostream& out) {
  KernelBenchOptions opt = opt_in;
  if (opt.sparsities.empty())
    for (const char* s : {"2:4", "2:6", "2:8", "2:10"})
      opt.sparsities.push_back(Sparsity::parse(s));
  SS_REQUIRE(!opt.ms.empty(), "bench kernel: --M needs at least one value");
  for (int64_t m : opt.ms) SS_REQUIRE(m >= 1, "bench kernel: M must be >= 1, got " << m);
  SS_REQUIRE(opt.repeats >= 1 && opt.warmup >= 0, "bench kernel: repeats >= 1, warmup >= 0");
  const ModelConfig config = resolve_model(opt.model);
  const auto shapes = benchmark_linear_shapes(config);
  const auto gpu = query_gpu();
  SS_REQUIRE_T(NotSupportedError, gpu.has_value(),
               "bench kernel: no CUDA GPU is available; the benchmark needs one");
  const LibraryVersions versions = query_library_versions();
  CudaStream stream;

  std::vector<std::string> variant_names{"dense"};
  for (const auto& s : opt.sparsities) variant_names.push_back(s.name());

  std::vector<KernelBenchResult> results;
  for (DType dtype : opt.dtypes) {
    KernelBenchResult res;
    res.model = config.name;
    res.dtype = dtype;
    try {
      require_dtype_supported(dtype);
    } catch (const NotSupportedError& e) {
      res.skipped = e.what();
      out << dtype_name(dtype) << ": skipped: " << e.what() << "\n";
      results.push_back(std::move(res));
      continue;
    }
    out << "== " << config.name << " " << dtype_name(dtype) << " on " << gpu->name << " (cc "
        << gpu->cc_major << "." << gpu->cc_minor << "), epilogue " << epilogue_name(opt.epilogue)
        << "\n";
    for (size_t li = 0; li < shapes.size(); ++li) {
      const LinearShape& shape = shapes[li];
      const bool has_bias = (shape.name == "qkv" && config.qkv_bias) ||
                            (shape.name == "o" && config.o_bias) ||
                            ((shape.name == "gate_up" || shape.name == "down") && config.mlp_bias);
      std::vector<float> bias;
      if (has_bias) {
        std::mt19937 rng(5 + static_cast<unsigned>(li));
        std::normal_distribution<float> d(0.0f, 0.5f);
        bias.resize(shape.n);
        for (auto& b : bias) b = d(rng);
      }
      std::vector<float> scales(shape.n);
      for (int64_t i = 0; i < shape.n; ++i) scales[i] = 1e-3f * (1.0f + static_cast<float>(i % 7));
      const LinearOptions lopt{dtype, opt.epilogue, opt.use_tuning, std::nullopt};
      const bool quantized = dtype != DType::kBF16;
      std::vector<Variant> variants;
      {
        Variant v{"dense", nullptr, ""};
        const auto codes = random_codes(dtype, shape.n, shape.k, false, 100 + li);
        HostWeight hw{
            dtype,   codes.data(),
            shape.n, shape.k,
            false,   quantized ? std::span<const float>(scales) : std::span<const float>()};
        try {
          v.layer = std::make_unique<Linear>(hw, bias, lopt);
        } catch (const NotSupportedError& e) {
          v.skipped = e.what();
        }
        variants.push_back(std::move(v));
      }
      for (const Sparsity& sp : opt.sparsities) {
        Variant v{sp.name(), nullptr, ""};
        const auto codes = random_codes(dtype, shape.n, sp.k_slide(shape.k), true, 200 + li);
        HostWeight hw{
            dtype,   codes.data(),
            shape.n, shape.k,
            true,    quantized ? std::span<const float>(scales) : std::span<const float>()};
        try {
          v.layer = std::make_unique<SlideSparseLinear>(hw, sp, bias, lopt);
        } catch (const NotSupportedError& e) {
          v.skipped = e.what();
        }
        variants.push_back(std::move(v));
      }

      for (int64_t m : opt.ms) {
        // Inputs and output; rotate x when it would sit in L2.
        const size_t x_bytes = static_cast<size_t>(m) * shape.k * 2;
        const int copies = rotation_count(x_bytes, gpu->l2_bytes);
        std::vector<KernelBenchRow> rows;
        std::vector<DeviceBuffer> xs;
        std::vector<DeviceBuffer> scratches;  // one per layer, as each layer had its own buffers
        DeviceBuffer y;
        std::vector<TimedFn> fns;
        std::vector<size_t> owners;  // variant index of each group of 4 closures
        try {
          for (int c = 0; c < copies; ++c) {
            xs.emplace_back(x_bytes);
            fill_random(xs.back().get(), DType::kBF16, m * shape.k, 1000 * li + c, stream.get(),
                        2.0f);
          }
          y = DeviceBuffer(static_cast<size_t>(m) * shape.n * 2);
          for (size_t vi = 0; vi < variants.size(); ++vi) {
            Variant& v = variants[vi];
            if (!v.layer) continue;
            try {
              v.layer->prepare(m);
            } catch (const NotSupportedError& e) {
              KernelBenchRow r;
              r.linear = shape.name;
              r.n = shape.n;
              r.k = shape.k;
              r.m = m;
              r.variant = v.name;
              r.skipped = e.what();
              rows.push_back(r);
              continue;
            }
            const LinearLayer* layer = v.layer.get();
            scratches.emplace_back(std::max<size_t>(layer->workspace_bytes(m), 1));
            const LinearScratch scratch{scratches.back().get(), scratches.back().bytes()};
            cudaStream_t s = stream.get();
            const LinearOutput o{y.get()};
            auto x_at = [&xs, copies](int it) {
              return xs[static_cast<size_t>(it % copies)].get();
            };
            fns.push_back([=](int it) { layer->quantize(s, x_at(it), m, scratch); });
            fns.push_back([=](int it) { layer->gemm(s, x_at(it), m, o, scratch); });
            fns.push_back([=](int) { layer->dequant(s, m, o, scratch); });
            fns.push_back([=](int it) { layer->forward(s, x_at(it), m, o, scratch); });
            owners.push_back(vi);
          }
        } catch (const OutOfMemoryError& e) {
          out << "  " << shape.name << " M=" << m << ": skipped: " << e.what() << "\n";
          continue;
        }
        if (!fns.empty()) {
          // Estimate one round, then choose repeats so each closure gets ~kBudgetMsPerClosure.
          const auto probe = time_interleaved(stream.get(), fns, TimingOptions{2, 2});
          double round_ms = 0;
          for (const auto& t : probe) round_ms += t.median_ms;
          const double per_closure = round_ms / static_cast<double>(fns.size());
          const int repeats =
              std::clamp(static_cast<int>(kBudgetMsPerClosure / std::max(per_closure, 1e-3)),
                         kMinRepeats, opt.repeats);
          const auto times =
              time_interleaved(stream.get(), fns, TimingOptions{opt.warmup, repeats});
          for (size_t g = 0; g < owners.size(); ++g) {
            Variant& v = variants[owners[g]];
            KernelBenchRow r;
            r.linear = shape.name;
            r.n = shape.n;
            r.k = shape.k;
            r.m = m;
            r.variant = v.name;
            r.backend = v.layer->backend();
            r.gemm_k = v.layer->gemm_k();
            const GemmChoice choice = v.layer->gemm_choice(m);
            r.gemm_out = choice.out_dtype;
            r.epilogue = std::string(epilogue_name(v.layer->epilogue()));
            r.epilogue_note = v.layer->epilogue_note();
            r.algorithm = choice.describe();
            r.times.quant_ms = times[4 * g].median_ms;
            r.times.gemm_ms = times[4 * g + 1].median_ms;
            r.times.dequant_ms = times[4 * g + 2].median_ms;
            r.times.total_ms = times[4 * g + 3].median_ms;
            rows.push_back(r);
          }
        }
        for (const auto& v : variants)
          if (!v.layer) {
            KernelBenchRow r;
            r.linear = shape.name;
            r.n = shape.n;
            r.k = shape.k;
            r.m = m;
            r.variant = v.name;
            r.skipped = v.skipped;
            rows.push_back(r);
          }
        // Speed-ups against the dense row of this (linear, M).
        const KernelBenchRow* dense = nullptr;
        for (const auto& r : rows)
          if (r.variant == "dense" && r.skipped.empty()) dense = &r;
        for (auto& r : rows) {
          if (!dense || !r.skipped.empty()) continue;
          r.speedup_gemm = dense->times.gemm_ms / r.times.gemm_ms;
          r.speedup_total = dense->times.total_ms / r.times.total_ms;
        }
        for (auto& r : rows) res.rows.push_back(std::move(r));
        out << "  " << shape.name << " (N=" << shape.n << ", K=" << shape.k << ") M=" << m
            << " done\n";
      }
    }
    // Sums over the four linears, per (M, variant), when all four ran.
    for (int64_t m : opt.ms) {
      std::map<std::string, KernelBenchRow> sums;
      std::map<std::string, int> counts;
      for (const auto& r : res.rows) {
        if (r.m != m || !r.skipped.empty() || r.linear == "sum") continue;
        KernelBenchRow& s = sums[r.variant];
        s.linear = "sum";
        s.m = m;
        s.variant = r.variant;
        s.backend = r.backend;
        s.gemm_out = r.gemm_out;
        s.epilogue = r.epilogue;
        s.algorithm = "-";
        s.times.quant_ms += r.times.quant_ms;
        s.times.gemm_ms += r.times.gemm_ms;
        s.times.dequant_ms += r.times.dequant_ms;
        s.times.total_ms += r.times.total_ms;
        ++counts[r.variant];
      }
      auto dense = sums.find("dense");
      for (auto& [name, s] : sums) {
        if (counts[name] != static_cast<int>(shapes.size())) continue;
        if (dense != sums.end() && counts["dense"] == static_cast<int>(shapes.size())) {
          s.speedup_gemm = dense->second.times.gemm_ms / s.times.gemm_ms;
          s.speedup_total = dense->second.times.total_ms / s.times.total_ms;
        }
        res.rows.push_back(s);
      }
    }
    print_sum_table(out, res, variant_names, opt.ms);

    if (opt.write_files) {
      nlohmann::json meta;
      meta["benchmark"] = "kernel";
      meta["model"] = config.name;
      meta["dtype"] = std::string(dtype_name(dtype));
      meta["device"] = gpu->name;
      meta["compute_capability"] =
          std::to_string(gpu->cc_major) + "." + std::to_string(gpu->cc_minor);
      meta["sm_count"] = gpu->sm_count;
      meta["l2_bytes"] = gpu->l2_bytes;
      meta["cuda_runtime"] = versions.cuda_runtime;
      meta["cuda_driver"] = versions.cuda_driver;
      meta["cublaslt"] = versions.cublaslt;
      meta["cusparselt"] = versions.cusparselt;
      meta["toolchain"] = versions.toolchain();
      meta["epilogue_requested"] = std::string(epilogue_name(opt.epilogue));
      meta["use_tuning"] = opt.use_tuning;
      meta["timestamp"] = iso_time_utc();
      meta["timing"] =
          "CUDA events around each call; all stages of dense and every pattern timed "
          "round-robin (interleaved); warm-up " +
          std::to_string(opt.warmup) + "; median of up to " + std::to_string(opt.repeats) +
          " runs (at least " + std::to_string(kMinRepeats) +
          ", fewer for huge M); x rotated through copies when it "
          "fits in L2; plans and workspaces made before timing";
      meta["output_dtypes"] =
          "dense cuBLASLt: int8 -> int32, fp8 -> fp32 (kernel epilogue) or bf16 (fused), bf16 -> "
          "bf16; SlideSparse cuSPARSELt: int8 -> int32 (kernel) or bf16 (fused), fp8 -> fp32 / "
          "bf16, bf16 -> bf16; see gemm_out per row";
      const std::string stem = config.name + "_" + std::string(dtype_name(dtype));
      for (GemmBackend backend : {GemmBackend::kCublasLt, GemmBackend::kCusparseLt}) {
        std::filesystem::path dir;
        if (opt.out_dir) {
          dir = *opt.out_dir;
        } else {
          dir = std::filesystem::path("results") / "kernel" /
                result_folder_name(gpu->short_name(), gpu->cc(), dtype_name(dtype),
                                   versions.toolchain()) /
                std::string(backend_name(backend));
        }
        std::vector<KernelBenchRow> mine;
        for (const auto& r : res.rows)
          if ((r.variant == "dense") == (backend == GemmBackend::kCublasLt)) mine.push_back(r);
        nlohmann::json j = meta;
        j["backend"] = std::string(backend_name(backend));
        j["rows"] = nlohmann::json::array();
        for (const auto& r : mine) j["rows"].push_back(row_json(r));
        const std::string name = "kernel_" + stem + "_" + std::string(backend_name(backend));
        write_file_atomic(dir / (name + ".json"), j.dump(2) + "\n");
        write_file_atomic(dir / (name + ".csv"), csv(mine));
        out << "wrote " << (dir / (name + ".json")).string() << " and .csv\n";
      }
    }
    results.push_back(std::move(res));
  }
  return results;
}

}  // namespace slidesparse
