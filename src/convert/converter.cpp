// The offline converter (see converter.h). Order of work: validate the source against its
// config.json, checksum it, then shard by shard stream every tensor to the output (linear
// weights through prepare_linear + slide_weight), copy the other files, write slidesparse.json,
// rename the temporary directory into place (convert/output_dir.h).
#include "convert/converter.h"


#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "convert/linear_prepare.h"
#include "convert/output_dir.h"
#include "io/checksum.h"
#include "io/hf_layout.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/slide_manifest.h"
#include "slidesparse/error.h"
#include "slidesparse/version.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kCopyChunkBytes = 64ull << 20;
constexpr const char* kIndexFile = "model.safetensors.index.json";

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

bool is_quantized(DType d) { return d == DType::kI8 || d == DType::kFP8E4M3; }

// What happens to each source tensor.
struct Plan {
  std::map<std::string, std::vector<int64_t>> linear;  // linear weight -> [n, k]
  std::set<std::string> replaced_scales;               // source weight_scale tensors we re-emit
};

Plan plan_conversion(const Checkpoint& ckpt, const ModelConfig& config) {
  Plan plan;
  const std::string cfg = "config.json (" + config.model_type + ", " +
                          std::to_string(config.num_hidden_layers) + " layers)";
  for (const HfTensor& t : hf_tensor_layout(config)) {
    if (!ckpt.contains(t.name))
      throw FormatError("missing tensor '" + t.name + "' in " + ckpt.dir().string() + ": " + cfg +
                        " expects it with shape " + shape_text(t.shape));
    const TensorInfo& info = ckpt.info(t.name);
    if (info.shape != t.shape)
      throw FormatError("tensor '" + t.name + "' has shape " + shape_text(info.shape) + " but " +
                        cfg + " implies " + shape_text(t.shape));
    if (t.role == HfTensorRole::kLinearWeight) plan.linear[t.name] = t.shape;
  }
  for (const std::string& name : ckpt.tensor_names()) {
    if (parse_linear_weight_name(name) && !plan.linear.contains(name))
      throw FormatError("tensor '" + name + "' is a linear weight outside the model described by " +
                        cfg);
  }
  for (const auto& [name, shape] : plan.linear) {
    const TensorInfo& info = ckpt.info(name);
    const std::string base = name.substr(0, name.size() - std::string(".weight").size());
    if (ckpt.contains(base + ".weight_zero_point"))
      throw NotSupportedError("tensor '" + name +
                              "' has a weight_zero_point: asymmetric quantisation is not "
                              "supported (SlideSparse uses symmetric per-channel scales)");
    if (is_quantized(info.dtype)) {
      if (!ckpt.contains(name + "_scale"))
        throw FormatError("tensor '" + name + "' is " + std::string(dtype_name(info.dtype)) +
                          " but its scale '" + name + "_scale' is missing");
      plan.replaced_scales.insert(name + "_scale");
    } else if (info.dtype != DType::kBF16 && info.dtype != DType::kF16 &&
               info.dtype != DType::kF32) {
      throw NotSupportedError("tensor '" + name + "' is " + std::string(dtype_name(info.dtype)) +
                              ": linear weights must be bf16, fp16, fp32, or int8 / fp8 with a "
                              "weight_scale");
    }
  }
  return plan;
}

void copy_tensor(const Checkpoint& ckpt, const std::string& name, SafetensorsWriter& writer,
                 const std::atomic<bool>* cancel) {
  const SafetensorsFile& file = ckpt.file_of(name);
  std::span<const std::byte> bytes = file.bytes(file.info(name));
  for (uint64_t at = 0; at < bytes.size(); at += kCopyChunkBytes) {
    throw_if_cancelled(cancel, "convert");
    auto part = bytes.subspan(at, std::min<uint64_t>(kCopyChunkBytes, bytes.size() - at));
    writer.write_part(name, part);
    file.release(part);  // keeps the resident set bounded for multi-GB embeddings
  }
}

void copy_other_files(const fs::path& in, const fs::path& out) {
  for (const auto& entry : fs::directory_iterator(in)) {
    const fs::path& p = entry.path();
    const std::string file = p.filename().string();
    if (p.extension() == ".safetensors" || file == kIndexFile || file == kSlideManifestFile)
      continue;
    fs::copy(p, out / p.filename(), fs::copy_options::recursive);
  }
}

}  // namespace

ConvertReport convert_checkpoint(const ConvertOptions& opt) {
  const auto t0 = Clock::now();
  auto say = [&](const std::string& line) {
    if (opt.progress) opt.progress(line);
  };
  SS_REQUIRE(
      opt.precision == DType::kI8 || opt.precision == DType::kFP8E4M3 ||
          opt.precision == DType::kBF16,
      "convert: --dtype must be int8, fp8 or bf16 (got " << dtype_name(opt.precision) << ")");
  const int threads =
      opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  std::error_code ec;
  SS_REQUIRE(fs::is_directory(opt.in, ec),
             "convert: input " << opt.in.string() << " is not a directory");
  SS_REQUIRE(!fs::exists(opt.in / kSlideManifestFile, ec),
             "convert: " << opt.in.string()
                         << " is already a SlideSparse checkpoint (it has slidesparse.json)");
  SS_REQUIRE(!opt.out.empty(), "convert: no output directory given");
  SS_REQUIRE(!fs::exists(opt.out, ec) || opt.overwrite,
             "convert: output " << opt.out.string() << " exists (pass --overwrite to replace it)");
  SS_REQUIRE(!fs::exists(opt.out, ec) || !fs::equivalent(opt.in, opt.out, ec),
             "convert: output and input are the same directory");

  const ModelConfig config = ModelConfig::load(opt.in);
  Checkpoint ckpt(opt.in);
  const Plan plan = plan_conversion(ckpt, config);

  // The output folder first: an unwritable --out is refused before any work.
  StagedOutputDir staged("convert", opt.out, say);
  const fs::path& tmp = staged.dir();

  ConvertReport report;
  report.tensors = static_cast<int64_t>(ckpt.tensor_names().size());
  for (const auto& f : ckpt.files()) report.bytes_in += f->file_size();
  say("source " + opt.in.string() + ": " + config.model_type + ", " +
      std::to_string(config.num_hidden_layers) + " layers, " + std::to_string(report.tensors) +
      " tensors in " + std::to_string(ckpt.files().size()) + " file(s), " +
      std::to_string(plan.linear.size()) + " linear weights -> " + opt.sparsity.name() + " " +
      std::string(dtype_name(opt.precision)));

  // Digests of everything that defines the weights (the safetensors files, the index,
  // config.json), computed on a side thread while the conversion runs: FNV-1a is byte-serial and
  // the conversion leaves part of a core idle while it writes.
  std::vector<fs::path> digest_inputs;
  for (const auto& f : ckpt.files()) digest_inputs.push_back(f->path());
  for (const char* extra : {kIndexFile, "config.json"})
    if (fs::is_regular_file(opt.in / extra, ec)) digest_inputs.push_back(opt.in / extra);
  std::future<std::pair<std::map<std::string, std::string>, double>> digest_job =
      std::async(std::launch::async, [digest_inputs, cancel = opt.cancel] {
        const auto t_sum = Clock::now();
        std::map<std::string, std::string> digests;
        for (const fs::path& p : digest_inputs) {
          if (cancel != nullptr && cancel->load()) break;  // the conversion stops too
          digests[p.filename().string()] = fnv1a64_file_hex(p);
        }
        return std::make_pair(digests, seconds_since(t_sum));
      });
  // Joined on every exit path (std::async's future blocks in its destructor), before `staged`
  // removes an unfinished output.
  try {
    SlideManifest manifest;
    manifest.tool_version = SLIDESPARSE_VERSION;
    manifest.sparsity = opt.sparsity;
    manifest.precision = opt.precision;
    manifest.assume_pruned = opt.assume_pruned;

    nlohmann::json weight_map = nlohmann::json::object();
    int64_t linear_done = 0;
    for (const auto& file : ckpt.files()) {
      const std::string shard = file->path().filename().string();
      std::vector<TensorSpec> specs;
      for (const TensorInfo& t : file->tensors()) {
        if (plan.replaced_scales.contains(t.name)) continue;
        if (auto it = plan.linear.find(t.name); it != plan.linear.end()) {
          const int64_t n = it->second[0];
          const int64_t k_slide = opt.sparsity.k_slide(it->second[1]);
          specs.push_back({t.name, opt.precision, {n, k_slide}});
          if (opt.precision != DType::kBF16)
            specs.push_back({t.name + "_scale", DType::kF32, {n, 1}});
        } else {
          specs.push_back({t.name, t.dtype, t.shape});
        }
      }
      SafetensorsWriter writer(tmp / shard, specs, {{"format", "pt"}});
      for (const TensorInfo& t : file->tensors()) {
        throw_if_cancelled(opt.cancel, "convert");
        report.total_params += t.numel();
        if (plan.replaced_scales.contains(t.name)) continue;
        auto it = plan.linear.find(t.name);
        if (it == plan.linear.end()) {
          copy_tensor(ckpt, t.name, writer, opt.cancel);
          weight_map[t.name] = shard;
          continue;
        }
        const auto t_lin = Clock::now();
        LinearSource src;
        src.name = t.name;
        src.dtype = t.dtype;
        src.n = it->second[0];
        src.k = it->second[1];
        src.weight = file->bytes(t);
        const std::string scale_name = t.name + "_scale";
        if (is_quantized(t.dtype)) {
          const TensorInfo& s = ckpt.info(scale_name);
          src.scale_dtype = s.dtype;
          src.scale_count = s.numel();
          src.scale = ckpt.bytes(scale_name);
        }
        PreparedLinear prepared =
            prepare_linear(src, opt.sparsity, opt.precision, opt.assume_pruned, threads);
        file->release(t);
        if (is_quantized(t.dtype)) ckpt.release(scale_name);
        {
          const WeightCodes slid = slide_weight(prepared, opt.sparsity, threads);
          writer.write(t.name, slid.bytes());
        }
        weight_map[t.name] = shard;
        if (opt.precision != DType::kBF16) {
          writer.write_values<float>(scale_name, prepared.scale_per_channel);
          weight_map[scale_name] = shard;
        }
        SlidTensor entry;
        entry.name = t.name;
        entry.scale = opt.precision == DType::kBF16 ? "" : scale_name;
        entry.n = src.n;
        entry.k = src.k;
        entry.k_slide = opt.sparsity.k_slide(src.k);
        entry.source_dtype = t.dtype;
        manifest.tensors.push_back(entry);
        report.linear_params += src.n * src.k;
        ++linear_done;
        std::ostringstream line;
        line.setf(std::ios::fixed);
        line.precision(2);
        line << "[" << linear_done << "/" << plan.linear.size() << "] " << t.name << " [" << src.n
             << ", " << src.k << "] " << dtype_name(t.dtype) << " -> [" << src.n << ", "
             << entry.k_slide << "] " << dtype_name(opt.precision) << " (" << seconds_since(t_lin)
             << " s)";
        say(line.str());
      }
      writer.finish();
      report.bytes_out += writer.total_bytes();
    }
    report.linear_weights = linear_done;

    if (ckpt.sharded()) {
      uint64_t total_size = 0;
      for (const auto& entry : fs::directory_iterator(tmp))
        if (entry.path().extension() == ".safetensors") total_size += entry.file_size();
      nlohmann::json index = {{"metadata", {{"total_size", total_size}}},
                              {"weight_map", weight_map}};
      write_file_atomic(tmp / kIndexFile, index.dump(2) + "\n");
    }
    copy_other_files(opt.in, tmp);
    auto [digests, checksum_seconds] = digest_job.get();
    throw_if_cancelled(opt.cancel, "convert");
    report.checksum_seconds = checksum_seconds;
    report.source_checksum = SlideManifest::combine_checksums(digests);
    manifest.source_checksum = report.source_checksum;
    manifest.source_files = digests;
    // Written last: a directory with slidesparse.json is a complete conversion.
    write_file_atomic(tmp / kSlideManifestFile, manifest.to_json().dump(2) + "\n");

    throw_if_cancelled(opt.cancel, "convert");
    staged.commit();
  } catch (...) {
    staged.rethrow_as_output_error();
  }
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace slidesparse
