// Verification of converted checkpoints (see verify.h). All checks use the CPU core: check_2to4,
// unslide_weights, check_pattern, lift_activations and the reference GEMMs.
#include "convert/verify.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "convert/linear_prepare.h"
#include "io/checksum.h"
#include "io/safetensors.h"
#include "io/slide_manifest.h"
#include "io/tensor_data.h"
#include "slidesparse/core/gemm_ref.h"
#include "slidesparse/core/lift.h"
#include "slidesparse/core/prune.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/core/slide.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& tensor, const std::string& why) {
  throw Error("verify: tensor '" + tensor + "': " + why);
}

// Random activations in the weight's code type.
template <class T>
std::vector<T> random_x(int64_t m, int64_t k, std::mt19937_64& rng) {
  std::vector<T> x(static_cast<size_t>(m * k));
  if constexpr (std::is_same_v<T, int8_t>) {
    std::uniform_int_distribution<int> d(-127, 127);
    for (auto& v : x) v = static_cast<int8_t>(d(rng));
  } else {
    std::uniform_real_distribution<float> d(-4.0f, 4.0f);
    std::vector<float> f(x.size());
    for (auto& v : f) v = d(rng);
    if constexpr (std::is_same_v<T, fp8_e4m3_t>) {
      x = quantize_rows_e4m3(f, m, k).codes;
    } else {
      x = to_bf16_vector(f);
    }
  }
  return x;
}

template <class T>
auto gemm(std::span<const T> a, std::span<const T> b, int64_t m, int64_t n, int64_t k) {
  if constexpr (std::is_same_v<T, int8_t>)
    return gemm_int8_ref(a, b, m, n, k);
  else if constexpr (std::is_same_v<T, fp8_e4m3_t>)
    return gemm_e4m3_ref(a, b, m, n, k);
  else
    return gemm_bf16_ref(a, b, m, n, k);
}

// dense[m, n] (x . W^T over K) against slid (lift(x) . W'^T over K'). int8: exact int32; fp8:
// exact too (e4m3 products are exact in double and their sums stay within 53 bits); bf16: within
// float rounding of the double sums.
template <class T>
void compare_products(const std::string& name, const std::vector<T>& w_dense,
                      const std::vector<T>& w_slid, int64_t n, int64_t k, int64_t k_slide,
                      Sparsity sparsity, int64_t m, std::mt19937_64& rng, const char* dense_label) {
  const std::vector<T> x = random_x<T>(m, k, rng);
  const std::vector<T> x_lift = lift_activations<T>(x, m, k, sparsity);
  const auto dense = gemm<T>(x, w_dense, m, n, k);
  const auto slid = gemm<T>(x_lift, w_slid, m, n, k_slide);
  for (size_t i = 0; i < dense.size(); ++i) {
    bool equal;
    if constexpr (std::is_same_v<T, bf16_t>) {
      const double a = dense[i], b = slid[i];
      equal = std::fabs(a - b) <= 1e-6 * std::max(std::fabs(a), std::fabs(b)) + 1e-30;
    } else {
      equal = dense[i] == slid[i];
    }
    if (!equal) {
      std::ostringstream os;
      os << dense_label << " . x != W' . lift(x) at row " << static_cast<int64_t>(i) / n
         << ", output channel " << static_cast<int64_t>(i) % n << ": " << dense[i] << " vs "
         << slid[i];
      fail(name, os.str());
    }
  }
}

template <class T>
const std::vector<T>& prepared_codes(const PreparedLinear& p) {
  if constexpr (std::is_same_v<T, int8_t>)
    return p.int8_codes;
  else if constexpr (std::is_same_v<T, fp8_e4m3_t>)
    return p.fp8_codes;
  else
    return p.bf16_values;
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
void verify_linear(const SlideManifest& manifest, const SlidTensor& entry, const Checkpoint& out,
                   const Checkpoint* source, const VerifyOptions& opt, int threads,
                   std::mt19937_64& rng) {
  const std::string& name = entry.name;
  const Sparsity sparsity = manifest.sparsity;
  const int64_t n = entry.n, k = entry.k, k_slide = entry.k_slide;
  const std::vector<T> w_slid = copy_values<T>(out.bytes(name));
  out.release(name);
  check_2to4<T>(w_slid, n, k_slide, "verify: tensor '" + name + "'");
  std::vector<T> w;
  try {
    w = unslide_weights<T>(w_slid, n, k, sparsity);
  } catch (const PatternError&) {
    throw;
  } catch (const Error& e) {
    fail(name, std::string("W' is not a valid sliding decomposition: ") + e.what());
  }
  check_pattern<T>(w, n, k, sparsity, "verify: tensor '" + name + "' un-slid");

  std::vector<float> scales;
  if (!entry.scale.empty()) {
    if (!out.contains(entry.scale)) fail(name, "its scale tensor '" + entry.scale + "' is missing");
    const TensorInfo& s = out.info(entry.scale);
    if (s.dtype != DType::kF32 || s.shape != std::vector<int64_t>{n, 1})
      fail(name, "scale '" + entry.scale + "' must be F32 [" + std::to_string(n) + ", 1]");
    scales = copy_values<float>(out.bytes(entry.scale));
    for (size_t i = 0; i < scales.size(); ++i)
      if (!(std::isfinite(scales[i]) && scales[i] > 0))
        fail(name, "scale[" + std::to_string(i) + "] = " + std::to_string(scales[i]) +
                       " is not a positive finite number");
  }

  if (source == nullptr) {
    compare_products<T>(name, w, w_slid, n, k, k_slide, sparsity, opt.sample_rows, rng,
                        "un-slid W");
    return;
  }
  // Rerun the converter's pruning and quantisation on the source weight.
  if (!source->contains(name)) fail(name, "not found in the source checkpoint");
  const TensorInfo& si = source->info(name);
  if (si.shape != std::vector<int64_t>{n, k})
    fail(name, "source shape differs from the recorded [n, k] = [" + std::to_string(n) + ", " +
                   std::to_string(k) + "]");
  LinearSource src;
  src.name = name;
  src.dtype = si.dtype;
  src.n = n;
  src.k = k;
  src.weight = source->bytes(name);
  if (si.dtype == DType::kI8 || si.dtype == DType::kFP8E4M3) {
    const std::string scale_name = name + "_scale";
    if (!source->contains(scale_name)) fail(name, "source scale '" + scale_name + "' is missing");
    src.scale_dtype = source->info(scale_name).dtype;
    src.scale_count = source->info(scale_name).numel();
    src.scale = source->bytes(scale_name);
  }
  const PreparedLinear expected =
      prepare_linear(src, sparsity, manifest.precision, manifest.assume_pruned, threads);
  source->release(name);
  const std::vector<T>& w_source = prepared_codes<T>(expected);
  for (size_t i = 0; i < w.size(); ++i) {
    if (!same_bits(w[i], w_source[i])) {
      std::ostringstream os;
      os << "un-slid W' differs from the converted source at row " << static_cast<int64_t>(i) / k
         << ", column " << static_cast<int64_t>(i) % k << ": " << to_float(w[i]) << " vs "
         << to_float(w_source[i]);
      fail(name, os.str());
    }
  }
  for (size_t i = 0; i < scales.size(); ++i) {
    if (!same_bits(scales[i], expected.scale_per_channel[i]))
      fail(name, "scale[" + std::to_string(i) + "] = " + std::to_string(scales[i]) +
                     " but the source gives " + std::to_string(expected.scale_per_channel[i]));
  }
  compare_products<T>(name, w_source, w_slid, n, k, k_slide, sparsity, opt.sample_rows, rng,
                      "source-quantised W");
}

}  // namespace

VerifyReport verify_checkpoint(const VerifyOptions& opt) {
  auto say = [&](const std::string& line) {
    if (opt.progress) opt.progress(line);
  };
  const int threads =
      opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  const SlideManifest manifest = SlideManifest::load(opt.dir);
  Checkpoint out(opt.dir);
  std::optional<Checkpoint> source;
  if (opt.source) source.emplace(*opt.source);
  VerifyReport report;
  std::mt19937_64 rng(opt.seed);

  std::set<std::string> managed;  // slid weights and their scales
  for (const SlidTensor& entry : manifest.tensors) {
    if (!out.contains(entry.name)) fail(entry.name, "listed in slidesparse.json but missing");
    const TensorInfo& info = out.info(entry.name);
    if (info.dtype != manifest.precision)
      fail(entry.name, "stored as " + std::string(dtype_name(info.dtype)) + ", manifest says " +
                           std::string(dtype_name(manifest.precision)));
    if (info.shape != std::vector<int64_t>{entry.n, entry.k_slide})
      fail(entry.name, "shape differs from the manifest's [n, k_slide] = [" +
                           std::to_string(entry.n) + ", " + std::to_string(entry.k_slide) + "]");
    switch (manifest.precision) {
      case DType::kI8:
        verify_linear<int8_t>(manifest, entry, out, source ? &*source : nullptr, opt, threads, rng);
        break;
      case DType::kFP8E4M3:
        verify_linear<fp8_e4m3_t>(manifest, entry, out, source ? &*source : nullptr, opt, threads,
                                  rng);
        break;
      default:
        verify_linear<bf16_t>(manifest, entry, out, source ? &*source : nullptr, opt, threads, rng);
        break;
    }
    managed.insert(entry.name);
    if (!entry.scale.empty()) managed.insert(entry.scale);
    ++report.slid_tensors;
    if (source) ++report.compared_with_source;
    say("ok " + entry.name);
  }
  if (!source) return report;

  // Every other tensor: present in the source, same dtype, shape and bytes; and nothing dropped.
  for (const std::string& name : out.tensor_names()) {
    if (managed.contains(name)) continue;
    if (!source->contains(name)) fail(name, "not in the source and not a slid weight or scale");
    const TensorInfo& a = out.info(name);
    const TensorInfo& b = source->info(name);
    if (a.dtype != b.dtype || a.shape != b.shape)
      fail(name, "dtype or shape differs from the source");
    // In 64 MiB pieces, releasing each, so multi-GB embeddings do not stay resident.
    const auto x = out.bytes(name), y = source->bytes(name);
    constexpr size_t kPiece = 64u << 20;
    for (size_t at = 0; at < x.size(); at += kPiece) {
      const size_t len = std::min(kPiece, x.size() - at);
      if (std::memcmp(x.data() + at, y.data() + at, len) != 0)
        fail(name, "bytes differ from the source (in bytes " + std::to_string(at) + ".." +
                       std::to_string(at + len) + ")");
      out.file_of(name).release(x.subspan(at, len));
      source->file_of(name).release(y.subspan(at, len));
    }
    ++report.copied_tensors;
  }
  for (const std::string& name : source->tensor_names()) {
    const bool replaced_scale =
        name.ends_with("_scale") && managed.contains(name.substr(0, name.size() - 6));
    if (!out.contains(name) && !replaced_scale)
      fail(name, "present in the source but missing from the converted checkpoint");
  }
  // The recorded digests must be those of this source.
  for (const auto& [file, digest] : manifest.source_files) {
    const fs::path p = *opt.source / file;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      throw Error("verify: source file '" + file + "' recorded in slidesparse.json is missing");
    if (fnv1a64_file_hex(p) != digest)
      throw Error("verify: source file '" + file +
                  "' has a different checksum than the one the "
                  "conversion recorded: this is not the checkpoint it was converted from");
  }
  report.checksum_checked = true;
  return report;
}

}  // namespace slidesparse
