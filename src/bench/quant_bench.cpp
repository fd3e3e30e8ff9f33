// Bandwidth benchmark of quant / quant_slide / slide / dequant (see quant_bench.h). Each kernel
// call and a cudaMemcpyAsync moving the same bytes are timed alternately with CUDA events; the
// stream is held behind a host gate while the calls are enqueued, so no launch gap is timed.
// Inputs and outputs rotate through several sets when one set would fit in L2.
#include "bench/quant_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "cuda/check.h"
#include "cuda/device_info.h"
#include "cuda/resources.h"
#include "cuda/timing.h"
#include "io/atomic_file.h"
#include "kernels/dequant.h"
#include "kernels/quant.h"
#include "kernels/rms_norm.h"
#include "kernels/silu_mul.h"
#include "slidesparse/core/float_formats.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

constexpr int kMaxRotation = 8;

// The stream waits in a host function until open() (or 5 s, so a full launch queue can never
// deadlock the enqueueing thread).
class StreamGate {
 public:
  explicit StreamGate(cudaStream_t stream) {
    SS_CUDA_CHECK(cudaLaunchHostFunc(stream, &StreamGate::wait, this));
  }
  void open() { open_.store(true); }

 private:
  static void CUDART_CB wait(void* self) {
    auto* gate = static_cast<StreamGate*>(self);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!gate->open_.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  std::atomic<bool> open_{false};
};

struct PairTiming {
  double kernel_median_ms = 0, kernel_min_ms = 0, copy_median_ms = 0;
};

// Times kernel(i) and copy(i) alternately: `repeats` samples each, every sample `per_sample`
// consecutive calls between two events (rotation sets), after `warmup` untimed calls of each.
PairTiming time_against_copy(cudaStream_t stream, const std::function<void(int)>& kernel,
                             const std::function<void(int)>& copy, int warmup, int repeats,
                             int per_sample) {
  std::vector<CudaEvent> events(static_cast<size_t>(repeats) * 4);
  StreamGate gate(stream);
  for (int w = 0; w < warmup; ++w) {
    kernel(w);
    copy(w);
  }
  int call = 0;
  for (int r = 0; r < repeats; ++r) {
    events[4 * r].record(stream);
    for (int s = 0; s < per_sample; ++s) kernel(call + s);
    events[4 * r + 1].record(stream);
    events[4 * r + 2].record(stream);
    for (int s = 0; s < per_sample; ++s) copy(call + s);
    events[4 * r + 3].record(stream);
    call += per_sample;
  }
  gate.open();
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> kernel_ms, copy_ms;
  for (int r = 0; r < repeats; ++r) {
    kernel_ms.push_back(events[4 * r + 1].elapsed_ms_since(events[4 * r]) / per_sample);
    copy_ms.push_back(events[4 * r + 3].elapsed_ms_since(events[4 * r + 2]) / per_sample);
  }
  PairTiming t;
  t.kernel_median_ms = median(kernel_ms);
  t.kernel_min_ms = *std::min_element(kernel_ms.begin(), kernel_ms.end());
  t.copy_median_ms = median(copy_ms);
  return t;
}

// Fills device memory with a tiled pool of random host values (never zeros; cheap at any size).
template <class T>
void fill_tiled(void* dst, int64_t count, const std::vector<T>& pool, cudaStream_t stream) {
  const int64_t pool_count = static_cast<int64_t>(pool.size());
  for (int64_t done = 0; done < count; done += pool_count) {
    const int64_t n = std::min(pool_count, count - done);
    SS_CUDA_CHECK(cudaMemcpyAsync(static_cast<T*>(dst) + done, pool.data(),
                                  static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice,
                                  stream));
  }
}

struct RandomPools {
  std::vector<uint16_t> bf16;
  std::vector<int32_t> i32;
  std::vector<float> f32;
  std::vector<float> positive;
  explicit RandomPools(uint64_t seed) {
    // Odd size, so tiles do not line up with rows.
    constexpr size_t kPool = (size_t{1} << 22) + 7;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int32_t> wide(-(1 << 24), 1 << 24);
    std::uniform_real_distribution<float> pos(1e-4f, 1e-1f);
    bf16.resize(kPool);
    i32.resize(kPool);
    f32.resize(kPool);
    positive.resize(kPool);
    for (size_t i = 0; i < kPool; ++i) {
      bf16[i] = bf16_from_float(normal(rng)).bits;
      i32[i] = wide(rng);
      f32[i] = normal(rng) * 1000.0f;
      positive[i] = pos(rng);
    }
  }
};

int rotation_for(int64_t bytes_per_call, int64_t l2_bytes) {
  if (bytes_per_call > 2 * l2_bytes) return 1;
  const int64_t sets = (3 * l2_bytes + bytes_per_call - 1) / bytes_per_call;
  return static_cast<int>(std::clamp<int64_t>(sets, 2, kMaxRotation));
}

std::string config_text(const KernelLaunchConfig& c) {
  return std::to_string(c.block_threads) + "x" + std::to_string(c.rows_per_block);
}

void print_header(std::ostream& out) {
  out << std::left << std::setw(12) << "kernel" << std::setw(6) << "dtype" << std::setw(6) << "L"
      << std::right << std::setw(7) << "M" << std::setw(7) << "K" << std::setw(7) << "Kout"
      << std::setw(9) << "config" << std::setw(10) << "us" << std::setw(9) << "GB/s"
      << std::setw(10) << "copyGB/s" << std::setw(8) << "%copy" << std::setw(8) << "x quant"
      << "\n";
}

void print_row(std::ostream& out, const QuantBenchRow& r) {
  std::ostringstream ratio;
  if (r.ratio_to_quant > 0) ratio << std::fixed << std::setprecision(2) << r.ratio_to_quant;
  out << std::left << std::setw(12) << r.kernel << std::setw(6) << r.dtype << std::setw(6)
      << r.pattern << std::right << std::setw(7) << r.m << std::setw(7) << r.k << std::setw(7)
      << r.k_out << std::setw(9) << config_text(r.config) << std::fixed << std::setprecision(1)
      << std::setw(10) << r.median_us << std::setw(9) << std::setprecision(0) << r.gbps
      << std::setw(10) << r.copy_gbps << std::setw(7) << std::setprecision(1) << r.pct_of_copy
      << "%" << std::setw(8) << ratio.str() << "\n"
      << std::flush;
}

}  // namespace

std::vector<QuantBenchRow> run_quant_bench(const QuantBenchOptions& options, std::ostream& out) {
  SS_REQUIRE(options.repeats >= 1,
             "bench quant: repeats must be >= 1 (got " << options.repeats << ")");
  SS_REQUIRE(options.warmup >= 0, "bench quant: warmup must be >= 0");
  SS_REQUIRE(!options.configs.empty(), "bench quant: no launch configs");
  for (DType d : options.dtypes)
    SS_REQUIRE(d == DType::kI8 || d == DType::kFP8E4M3,
               "bench quant: --dtype takes int8 and fp8 (got " << dtype_name(d) << ")");
  std::vector<Sparsity> patterns = options.sparsities;
  if (patterns.empty())
    for (const char* p : {"2:4", "2:6", "2:8", "2:10"}) patterns.push_back(Sparsity::parse(p));
  SS_REQUIRE(!options.ms.empty() && !options.ks.empty(), "bench quant: --M and --K need values");
  for (int64_t m : options.ms)
    for (int64_t k : options.ks)
      SS_REQUIRE(m > 0 && k > 0, "bench quant: M and K must be > 0 (got " << m << ", " << k << ")");
  const auto gpu = query_gpu();
  if (!gpu)
    throw NotSupportedError("bench quant: no CUDA GPU is available; the benchmark needs one");

  const int64_t l2 = std::max<int64_t>(gpu->l2_bytes, 1);
  out << "bench quant on " << gpu->name << " (" << gpu->sm_count << " SMs, L2 " << (l2 >> 20)
      << " MiB); median of " << options.repeats << " samples after " << options.warmup
      << " warm-up calls; copy = cudaMemcpyAsync of (read + written) / 2 bytes\n";
  print_header(out);

  CudaStream stream;
  const RandomPools pools(std::random_device{}());
  std::vector<QuantBenchRow> rows;

  for (int64_t m : options.ms)
    for (int64_t k : options.ks) {
      int64_t k_slide_max = k;
      for (const Sparsity& s : patterns) k_slide_max = std::max(k_slide_max, s.k_slide(k));
      const int64_t n = k;  // dequant: N = K

      // One rotation count per case, from the smallest per-call working set (quant).
      const int rot = rotation_for(3 * m * k, l2);
      const int64_t x_bytes = m * k * 2;
      const int64_t out_bytes = std::max(m * k_slide_max * 2, m * n * 2);  // codes/bf16/y
      const int64_t acc_bytes = m * n * 4;
      const int64_t copy_bytes = 3 * m * std::max(n, k_slide_max) + 8 * m + 8 * n;  // >= B / 2
      DeviceBuffer x(static_cast<size_t>(x_bytes * rot)),
          outb(static_cast<size_t>(out_bytes * rot));
      DeviceBuffer acc(static_cast<size_t>(acc_bytes * rot)),
          scales(static_cast<size_t>(m * 4 * rot));
      DeviceBuffer token(static_cast<size_t>(m * 4)), channel(static_cast<size_t>(n * 4)),
          bias(static_cast<size_t>(n * 4));
      DeviceBuffer copy_src(static_cast<size_t>(copy_bytes * rot)),
          copy_dst(static_cast<size_t>(copy_bytes * rot));
      // Fused producers: RMSNorm weight [k]; SwiGLU gate_up [m, 2k] per set.
      DeviceBuffer norm_weight(static_cast<size_t>(k * 2)),
          gate_up(static_cast<size_t>(2 * x_bytes * rot));
      fill_tiled(x.get(), m * k * rot, pools.bf16, stream.get());
      fill_tiled(norm_weight.get(), k, pools.bf16, stream.get());
      fill_tiled(gate_up.get(), 2 * m * k * rot, pools.bf16, stream.get());
      fill_tiled(copy_src.get(), copy_bytes * rot / 4, pools.i32, stream.get());
      fill_tiled(token.get(), m, pools.positive, stream.get());
      fill_tiled(channel.get(), n, pools.positive, stream.get());
      fill_tiled(bias.get(), n, pools.f32, stream.get());
      SS_CUDA_CHECK(cudaStreamSynchronize(stream.get()));

      auto x_set = [&](int i) { return x.as<uint8_t>() + (i % rot) * x_bytes; };
      auto out_set = [&](int i) { return outb.as<uint8_t>() + (i % rot) * out_bytes; };
      auto scale_set = [&](int i) { return scales.as<float>() + (i % rot) * m; };

      auto measure = [&](QuantBenchRow row, const std::function<void(int)>& kernel) {
        const int64_t half = (row.bytes + 1) / 2;
        auto copy = [&](int i) {
          SS_CUDA_CHECK(cudaMemcpyAsync(copy_dst.as<uint8_t>() + (i % rot) * copy_bytes,
                                        copy_src.as<uint8_t>() + (i % rot) * copy_bytes,
                                        static_cast<size_t>(half), cudaMemcpyDeviceToDevice,
                                        stream.get()));
        };
        const PairTiming t =
            time_against_copy(stream.get(), kernel, copy, options.warmup, options.repeats, rot);
        row.rotation = rot;
        row.median_us = t.kernel_median_ms * 1e3;
        row.min_us = t.kernel_min_ms * 1e3;
        row.copy_median_us = t.copy_median_ms * 1e3;
        row.gbps = static_cast<double>(row.bytes) / (t.kernel_median_ms * 1e6);
        row.copy_gbps = static_cast<double>(2 * half) / (t.copy_median_ms * 1e6);
        row.pct_of_copy = 100.0 * row.gbps / row.copy_gbps;
        return row;
      };
      auto emit = [&](const QuantBenchRow& row) {
        rows.push_back(row);
        print_row(out, row);
      };

      for (const KernelLaunchConfig& config : options.configs) {
        for (DType dtype : options.dtypes) {
          QuantBenchRow base;
          base.dtype = std::string(dtype_name(dtype));
          base.m = m;
          base.k = k;
          base.kernel = "quant";
          base.k_out = k;
          base.config = resolve_quant_config(DType::kBF16, k, config);
          base.bytes = 2 * m * k + m * k + 4 * m;
          const QuantBenchRow quant = measure(base, [&](int i) {
            launch_quant(x_set(i), DType::kBF16, m, k, k, dtype, out_set(i), m, k, scale_set(i),
                         stream.get(), config);
          });
          emit(quant);
          for (const Sparsity& s : patterns) {
            QuantBenchRow row = base;
            row.kernel = "quant_slide";
            row.pattern = s.name();
            row.k_out = s.k_slide(k);
            row.bytes = 2 * m * k + m * row.k_out + 4 * m;
            row = measure(row, [&](int i) {
              launch_quant_slide(x_set(i), DType::kBF16, m, k, k, s, dtype, out_set(i), m,
                                 scale_set(i), stream.get(), config);
            });
            row.ratio_to_quant = row.median_us / quant.median_us;
            emit(row);
          }
          // Fused RMSNorm / SwiGLU -> quant(_slide): plain, then each pattern. "x quant" is the
          // fused kernel's time over quant's on the same K.
          auto gate_up_set = [&](int i) { return gate_up.as<uint8_t>() + (i % rot) * 2 * x_bytes; };
          for (int p = -1; p < static_cast<int>(patterns.size()); ++p) {
            const Sparsity* s = p < 0 ? nullptr : &patterns[static_cast<size_t>(p)];
            QuantBenchRow row = base;
            row.pattern = s != nullptr ? s->name() : "";
            row.k_out = s != nullptr ? s->k_slide(k) : k;
            row.kernel = s != nullptr ? "rms_norm_quant_slide" : "rms_norm_quant";
            row.bytes = 2 * m * k + 2 * k + m * row.k_out + 4 * m;
            row = measure(row, [&](int i) {
              launch_rms_norm_quant(x_set(i), k, norm_weight.get(), 1e-6f, m, k, dtype, s,
                                    out_set(i), m, row.k_out, scale_set(i), stream.get(), config);
            });
            row.ratio_to_quant = row.median_us / quant.median_us;
            emit(row);
            row.kernel = s != nullptr ? "silu_mul_quant_slide" : "silu_mul_quant";
            row.bytes = 4 * m * k + m * row.k_out + 4 * m;
            row = measure(row, [&](int i) {
              launch_silu_mul_quant(gate_up_set(i), 2 * k, m, k, dtype, s, out_set(i), m, row.k_out,
                                    scale_set(i), stream.get(), config);
            });
            row.ratio_to_quant = row.median_us / quant.median_us;
            emit(row);
          }
        }
        for (const Sparsity& s : patterns) {
          QuantBenchRow row;
          row.kernel = "slide";
          row.dtype = "bf16";
          row.pattern = s.name();
          row.m = m;
          row.k = k;
          row.k_out = s.k_slide(k);
          row.config = resolve_quant_config(DType::kBF16, k, config);
          row.bytes = 2 * m * k + 2 * m * row.k_out;
          emit(measure(row, [&](int i) {
            launch_slide(x_set(i), DType::kBF16, m, k, k, s, out_set(i), m, stream.get(), config);
          }));
        }
        for (DType acc_dtype : {DType::kI32, DType::kF32}) {
          if (acc_dtype == DType::kI32) {
            fill_tiled(acc.get(), m * n * rot, pools.i32, stream.get());
          } else {
            fill_tiled(acc.get(), m * n * rot, pools.f32, stream.get());
          }
          QuantBenchRow row;
          row.kernel = "dequant";
          row.dtype = std::string(dtype_name(acc_dtype));
          row.m = m;
          row.k = n;
          row.k_out = n;
          row.config = resolve_dequant_config(n, config);
          row.bytes = 4 * m * n + 4 * m + 8 * n + 2 * m * n;
          emit(measure(row, [&](int i) {
            launch_dequant(acc.as<uint8_t>() + (i % rot) * acc_bytes, acc_dtype, m, n, n,
                           token.as<float>(), channel.as<float>(), bias.as<float>(), out_set(i), n,
                           stream.get(), config);
          }));
        }
      }
    }
  if (options.out_dir) write_quant_bench_results(*options.out_dir, rows, options);
  return rows;
}

void write_quant_bench_results(const std::filesystem::path& dir,
                               const std::vector<QuantBenchRow>& rows,
                               const QuantBenchOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("bench quant: cannot create " + dir.string() + ": " + ec.message());

  nlohmann::json doc;
  if (const auto gpu = query_gpu()) {
    doc["device"] = {{"name", gpu->name},
                     {"cc", gpu->cc()},
                     {"sm_count", gpu->sm_count},
                     {"l2_bytes", gpu->l2_bytes}};
  }
  doc["toolchain"] = query_library_versions().toolchain();
  doc["warmup"] = options.warmup;
  doc["repeats"] = options.repeats;
  doc["method"] =
      "CUDA events around each sample (rotation-count consecutive calls), median over repeats; "
      "bytes = read + written; copy = cudaMemcpyAsync D2D of bytes/2, timed interleaved";
  nlohmann::json list = nlohmann::json::array();
  std::ostringstream csv;
  csv << "kernel,dtype,pattern,m,k,k_out,block_threads,rows_per_block,bytes,rotation,median_us,"
         "min_us,gbps,copy_median_us,copy_gbps,pct_of_copy,ratio_to_quant\n";
  for (const QuantBenchRow& r : rows) {
    list.push_back({{"kernel", r.kernel},
                    {"dtype", r.dtype},
                    {"pattern", r.pattern},
                    {"m", r.m},
                    {"k", r.k},
                    {"k_out", r.k_out},
                    {"block_threads", r.config.block_threads},
                    {"rows_per_block", r.config.rows_per_block},
                    {"bytes", r.bytes},
                    {"rotation", r.rotation},
                    {"median_us", r.median_us},
                    {"min_us", r.min_us},
                    {"gbps", r.gbps},
                    {"copy_median_us", r.copy_median_us},
                    {"copy_gbps", r.copy_gbps},
                    {"pct_of_copy", r.pct_of_copy},
                    {"ratio_to_quant", r.ratio_to_quant}});
    csv << r.kernel << "," << r.dtype << "," << r.pattern << "," << r.m << "," << r.k << ","
        << r.k_out << "," << r.config.block_threads << "," << r.config.rows_per_block << ","
        << r.bytes << "," << r.rotation << "," << r.median_us << "," << r.min_us << "," << r.gbps
        << "," << r.copy_median_us << "," << r.copy_gbps << "," << r.pct_of_copy << ","
        << r.ratio_to_quant << "\n";
  }
  doc["rows"] = std::move(list);
  write_file_atomic(dir / "quant_bench.json", doc.dump(2) + "\n");
  write_file_atomic(dir / "quant_bench.csv", csv.str());
}

}  // namespace slidesparse
