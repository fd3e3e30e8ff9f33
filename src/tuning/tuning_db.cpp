// The tuning database: JSON files per hardware key (see slidesparse/tuning/tuning_db.h). Parsing
// errors become FormatError naming the file and the entry; a file for another key is refused.
#include "slidesparse/tuning/tuning_db.h"


#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>

#include "cuda/device_info.h"
#include "io/atomic_file.h"

namespace slidesparse {

namespace fs = std::filesystem;

// ---- HardwareKey -----------------------------------------------------------------------------

std::optional<HardwareKey> HardwareKey::current() {
  auto gpu = query_gpu();
  if (!gpu) return std::nullopt;
  const LibraryVersions versions = query_library_versions();
  HardwareKey key;
  key.gpu_name = gpu->name;
  key.cc = gpu->cc();
  key.cuda_runtime = versions.cuda_runtime;
  key.cublaslt = versions.cublaslt;
  key.cusparselt = versions.cusparselt_built ? versions.cusparselt : 0;
  return key;
}

std::string HardwareKey::dir_name() const {
  // The full GPU name, with anything but letters and digits turned into single underscores, so
  // "H100 PCIe" and "H100 80GB HBM3" get different folders.
  std::string gpu;
  for (char c : gpu_name) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (keep) {
      gpu += c;
    } else if (!gpu.empty() && gpu.back() != '_') {
      gpu += '_';
    }
  }
  while (!gpu.empty() && gpu.back() == '_') gpu.pop_back();
  if (gpu.empty()) gpu = "GPU";
  std::ostringstream os;
  os << gpu << "_cc" << cc << "_cuda" << cuda_runtime / 1000 << "." << (cuda_runtime % 1000) / 10
     << "_cublaslt" << cublaslt << "_cusparselt" << cusparselt;
  return os.str();
}

std::string HardwareKey::describe() const {
  std::ostringstream os;
  os << gpu_name << ", cc " << cc / 10 << "." << cc % 10 << ", CUDA runtime " << cuda_runtime
     << ", cuBLASLt " << cublaslt << ", cuSPARSELt " << cusparselt;
  return os.str();
}

void to_json(nlohmann::json& j, const HardwareKey& key) {
  j = nlohmann::json{{"gpu_name", key.gpu_name},
                     {"compute_capability", key.cc},
                     {"cuda_runtime", key.cuda_runtime},
                     {"cublaslt", key.cublaslt},
                     {"cusparselt", key.cusparselt}};
}

namespace {

// Reads a required field, turning nlohmann's exceptions into a FormatError that names it.
template <class T>
T field(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) throw FormatError(std::string("expected an object holding \"") + name + "\"");
  auto it = j.find(name);
  if (it == j.end()) throw FormatError(std::string("missing field \"") + name + "\"");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("field \"") + name + "\" has the wrong type (" + e.what() + ")");
  }
}

template <class T>
std::optional<T> optional_field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return field<T>(j, name);
}

DType dtype_field(const nlohmann::json& j, const char* name) {
  const auto text = field<std::string>(j, name);
  try {
    return parse_dtype(text);
  } catch (const Error& e) {
    throw FormatError(std::string("field \"") + name + "\": " + e.what());
  }
}

int64_t positive_field(const nlohmann::json& j, const char* name) {
  const auto value = field<int64_t>(j, name);
  if (value <= 0) {
    throw FormatError(std::string("field \"") + name + "\" must be > 0, got " +
                      std::to_string(value));
  }
  return value;
}

}  // namespace

void from_json(const nlohmann::json& j, HardwareKey& key) {
  key.gpu_name = field<std::string>(j, "gpu_name");
  key.cc = field<int>(j, "compute_capability");
  key.cuda_runtime = field<int>(j, "cuda_runtime");
  key.cublaslt = field<int64_t>(j, "cublaslt");
  key.cusparselt = field<int>(j, "cusparselt");
}

// ---- Entries ---------------------------------------------------------------------------------

void to_json(nlohmann::json& j, const GemmTuningEntry& e) {
  j = nlohmann::json{{"backend", std::string(backend_name(e.key.backend))},
                     {"dtype", std::string(dtype_name(e.key.dtype))},
                     {"out_dtype", std::string(dtype_name(e.key.out_dtype))},
                     {"n", e.key.n},
                     {"k", e.key.k},
                     {"m", e.key.m},
                     {"algorithm", e.algorithm},
                     {"algorithm_text", e.algorithm.describe()},
                     {"time_us", e.time_us},
                     {"default_time_us", e.default_time_us},
                     {"candidates_tried", e.candidates_tried}};
  // Written only when set, so default-accumulation files read as before.
  if (e.key.fast_accum) j["fast_accum"] = true;
  if (!e.sparsity.empty()) j["sparsity"] = e.sparsity;
  if (e.dense_time_us) j["dense_time_us"] = *e.dense_time_us;
  if (e.sparse_beats_dense) j["sparse_beats_dense"] = *e.sparse_beats_dense;
}

void from_json(const nlohmann::json& j, GemmTuningEntry& e) {
  const auto backend_text = field<std::string>(j, "backend");
  try {
    e.key.backend = parse_backend(backend_text);
  } catch (const Error& err) {
    throw FormatError(std::string("field \"backend\": ") + err.what());
  }
  e.key.dtype = dtype_field(j, "dtype");
  e.key.out_dtype = dtype_field(j, "out_dtype");
  e.key.n = positive_field(j, "n");
  e.key.k = positive_field(j, "k");
  e.key.m = positive_field(j, "m");
  // Absent in tables written before fast accumulation existed: those are default-accumulation.
  e.key.fast_accum = optional_field<bool>(j, "fast_accum").value_or(false);
  auto it = j.find("algorithm");
  if (it == j.end()) throw FormatError("missing field \"algorithm\"");
  try {
    e.algorithm = it->get<GemmAlgorithm>();
  } catch (const nlohmann::json::exception& err) {
    throw FormatError(std::string("field \"algorithm\": ") + err.what());
  }
  e.time_us = field<double>(j, "time_us");
  e.default_time_us = optional_field<double>(j, "default_time_us").value_or(0.0);
  e.candidates_tried = optional_field<int>(j, "candidates_tried").value_or(0);
  e.sparsity = optional_field<std::string>(j, "sparsity").value_or("");
  e.dense_time_us = optional_field<double>(j, "dense_time_us");
  e.sparse_beats_dense = optional_field<bool>(j, "sparse_beats_dense");
}

void to_json(nlohmann::json& j, const KernelTuningEntry& e) {
  j = nlohmann::json{{"kernel", e.key.kernel},
                     {"dtype", std::string(dtype_name(e.key.dtype))},
                     {"block", e.key.block},
                     {"cols", e.key.cols},
                     {"m", e.key.m},
                     {"block_threads", e.config.block_threads},
                     {"rows_per_block", e.config.rows_per_block},
                     {"time_us", e.time_us},
                     {"default_time_us", e.default_time_us}};
}

void from_json(const nlohmann::json& j, KernelTuningEntry& e) {
  e.key.kernel = field<std::string>(j, "kernel");
  if (e.key.kernel.empty()) throw FormatError("field \"kernel\" is empty");
  e.key.dtype = dtype_field(j, "dtype");
  e.key.block = field<int>(j, "block");
  e.key.cols = positive_field(j, "cols");
  e.key.m = positive_field(j, "m");
  e.config.block_threads = field<int>(j, "block_threads");
  e.config.rows_per_block = field<int>(j, "rows_per_block");
  if (e.config.block_threads < 0 || e.config.block_threads > 1024 || e.config.rows_per_block < 0) {
    throw FormatError("launch configuration out of range (block_threads " +
                      std::to_string(e.config.block_threads) + ", rows_per_block " +
                      std::to_string(e.config.rows_per_block) + ")");
  }
  e.time_us = field<double>(j, "time_us");
  e.default_time_us = optional_field<double>(j, "default_time_us").value_or(0.0);
}

// ---- TuningTable -----------------------------------------------------------------------------

TuningTable::GemmShape TuningTable::shape_of(const GemmProblemKey& key) {
  return {static_cast<int>(key.backend),
          static_cast<int>(key.dtype),
          static_cast<int>(key.out_dtype),
          key.n,
          key.k,
          key.fast_accum};
}

TuningTable::KernelShape TuningTable::shape_of(const KernelProblemKey& key) {
  return {key.kernel, static_cast<int>(key.dtype), key.block, key.cols};
}

void TuningTable::put(const GemmTuningEntry& entry) {
  gemm_[shape_of(entry.key)][entry.key.m] = entry;
}

void TuningTable::put(const KernelTuningEntry& entry) {
  kernel_[shape_of(entry.key)][entry.key.m] = entry;
}

namespace {

// The smallest tuned M >= m; the largest tuned M when m is beyond it.
template <class Entry>
const Entry* pick_by_m(const std::map<int64_t, Entry>& by_m, int64_t m) {
  if (by_m.empty()) return nullptr;
  auto it = by_m.lower_bound(m);
  if (it == by_m.end()) return &std::prev(by_m.end())->second;
  return &it->second;
}

}  // namespace

const GemmTuningEntry* TuningTable::find_gemm(const GemmProblemKey& key) const {
  auto it = gemm_.find(shape_of(key));
  return it == gemm_.end() ? nullptr : pick_by_m(it->second, key.m);
}

const KernelTuningEntry* TuningTable::find_kernel(const KernelProblemKey& key) const {
  auto it = kernel_.find(shape_of(key));
  return it == kernel_.end() ? nullptr : pick_by_m(it->second, key.m);
}

const GemmTuningEntry* TuningTable::find_gemm_exact(const GemmProblemKey& key) const {
  auto it = gemm_.find(shape_of(key));
  if (it == gemm_.end()) return nullptr;
  auto at = it->second.find(key.m);
  return at == it->second.end() ? nullptr : &at->second;
}

const KernelTuningEntry* TuningTable::find_kernel_exact(const KernelProblemKey& key) const {
  auto it = kernel_.find(shape_of(key));
  if (it == kernel_.end()) return nullptr;
  auto at = it->second.find(key.m);
  return at == it->second.end() ? nullptr : &at->second;
}

std::vector<GemmTuningEntry> TuningTable::gemm_entries() const {
  std::vector<GemmTuningEntry> out;
  for (const auto& [shape, by_m] : gemm_) {
    for (const auto& [m, entry] : by_m) out.push_back(entry);
  }
  return out;
}

std::vector<KernelTuningEntry> TuningTable::kernel_entries() const {
  std::vector<KernelTuningEntry> out;
  for (const auto& [shape, by_m] : kernel_) {
    for (const auto& [m, entry] : by_m) out.push_back(entry);
  }
  return out;
}

size_t TuningTable::gemm_count() const {
  size_t n = 0;
  for (const auto& [shape, by_m] : gemm_) n += by_m.size();
  return n;
}

size_t TuningTable::kernel_count() const {
  size_t n = 0;
  for (const auto& [shape, by_m] : kernel_) n += by_m.size();
  return n;
}

// ---- Files -----------------------------------------------------------------------------------

namespace {

constexpr const char* kFormatName = "slidesparse-tuning";
constexpr const char* kAllFiles[] = {kTuningFileCublasLt, kTuningFileCusparseLt,
                                     kTuningFileKernels};

std::string key_mismatch_text(const HardwareKey& file_key, const HardwareKey& want) {
  std::ostringstream os;
  if (file_key.gpu_name != want.gpu_name) {
    os << " GPU \"" << file_key.gpu_name << "\" vs \"" << want.gpu_name << "\";";
  }
  if (file_key.cc != want.cc)
    os << " compute capability " << file_key.cc << " vs " << want.cc << ";";
  if (file_key.cuda_runtime != want.cuda_runtime) {
    os << " CUDA runtime " << file_key.cuda_runtime << " vs " << want.cuda_runtime << ";";
  }
  if (file_key.cublaslt != want.cublaslt) {
    os << " cuBLASLt " << file_key.cublaslt << " vs " << want.cublaslt << ";";
  }
  if (file_key.cusparselt != want.cusparselt) {
    os << " cuSPARSELt " << file_key.cusparselt << " vs " << want.cusparselt
       << " (its algorithm ids change between versions);";
  }
  return os.str();
}

nlohmann::json parse_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FormatError("cannot open tuning table " + file.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError("tuning table " + file.string() + " is not valid JSON: " + e.what());
  }
}

// Adds the file's entries to `table`; returns the key its header names.
HardwareKey read_into(const fs::path& file, TuningTable* table, const HardwareKey* expect) {
  const nlohmann::json doc = parse_file(file);
  HardwareKey file_key;
  try {
    if (!doc.is_object() || field<std::string>(doc, "format") != kFormatName) {
      throw FormatError(std::string("not a SlideSparse tuning table (\"format\" is not \"") +
                        kFormatName + "\")");
    }
    const int version = field<int>(doc, "format_version");
    if (version != kTuningFormatVersion) {
      throw FormatError("format_version " + std::to_string(version) + " is not supported (this " +
                        "build reads " + std::to_string(kTuningFormatVersion) + ")");
    }
    file_key = field<HardwareKey>(doc, "hardware");
  } catch (const FormatError& e) {
    throw FormatError("tuning table " + file.string() + ": " + e.what());
  }
  if (expect != nullptr && !(file_key == *expect)) {
    throw HardwareMismatchError("tuning table " + file.string() + " was made for " +
                                file_key.describe() + ", not for this " + expect->describe() + ":" +
                                key_mismatch_text(file_key, *expect) +
                                " refusing to use it (run `slidesparse tune` here)");
  }
  if (table == nullptr) return file_key;
  const auto gemm = doc.find("gemm");
  const auto kernels = doc.find("kernels");
  size_t index = 0;
  try {
    if (gemm != doc.end()) {
      if (!gemm->is_array()) throw FormatError("\"gemm\" must be an array");
      for (index = 0; index < gemm->size(); ++index) {
        table->put((*gemm)[index].get<GemmTuningEntry>());
      }
    }
  } catch (const Error& e) {
    throw FormatError("tuning table " + file.string() + ", gemm entry " + std::to_string(index) +
                      ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("tuning table " + file.string() + ", gemm entry " + std::to_string(index) +
                      ": " + e.what());
  }
  try {
    if (kernels != doc.end()) {
      if (!kernels->is_array()) throw FormatError("\"kernels\" must be an array");
      for (index = 0; index < kernels->size(); ++index) {
        table->put((*kernels)[index].get<KernelTuningEntry>());
      }
    }
  } catch (const Error& e) {
    throw FormatError("tuning table " + file.string() + ", kernel entry " + std::to_string(index) +
                      ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("tuning table " + file.string() + ", kernel entry " + std::to_string(index) +
                      ": " + e.what());
  }
  return file_key;
}

}  // namespace

fs::path tuning_table_dir(const fs::path& root, const HardwareKey& hardware) {
  return root / hardware.dir_name();
}

TuningTable load_tuning_table(const fs::path& root, const HardwareKey& hardware) {
  TuningTable table(hardware);
  const fs::path dir = tuning_table_dir(root, hardware);
  for (const char* name : kAllFiles) {
    const fs::path file = dir / name;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) continue;
    read_into(file, &table, &hardware);
  }
  return table;
}

std::shared_ptr<const TuningTable> load_tuning_table_or_none(const fs::path& root,
                                                             const HardwareKey& hardware,
                                                             std::string* description) {
  std::string text;
  std::shared_ptr<const TuningTable> result;
  try {
    auto table = std::make_shared<TuningTable>(load_tuning_table(root, hardware));
    std::ostringstream os;
    if (table->empty()) {
      os << "tuning: none (no table for " << hardware.dir_name() << " under " << root.string();
      const auto others = list_tuning_keys(root);
      if (!others.empty()) {
        os << "; tables there are for:";
        for (const auto& key : others) os << " " << key;
      }
      os << "; library defaults in use)";
    } else {
      os << "tuning: " << tuning_table_dir(root, hardware).string() << " (" << table->gemm_count()
         << " GEMM, " << table->kernel_count() << " kernel entries)";
      result = std::move(table);
    }
    text = os.str();
  } catch (const std::exception& e) {  // Error, or std::bad_alloc on an absurd file
    text = std::string("tuning: none (table refused: ") + e.what() + ")";
    std::cerr << "slidesparse: warning: " << e.what() << "; using library defaults\n";
  }
  if (description != nullptr) *description = text;
  return result;
}

TuningTable read_tuning_file(const fs::path& file) {
  const HardwareKey key = read_into(file, nullptr, nullptr);
  TuningTable table(key);
  read_into(file, &table, &key);
  return table;
}

std::vector<fs::path> save_tuning_table(const TuningTable& table, const fs::path& root) {
  const fs::path dir = tuning_table_dir(root, table.hardware());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create tuning folder " + dir.string() + ": " + ec.message());

  nlohmann::json dense = nlohmann::json::array();
  nlohmann::json sparse = nlohmann::json::array();
  nlohmann::json kernels = nlohmann::json::array();
  for (const auto& e : table.gemm_entries()) {
    (e.key.backend == GemmBackend::kCusparseLt ? sparse : dense).push_back(e);
  }
  for (const auto& e : table.kernel_entries()) kernels.push_back(e);

  auto document = [&](const char* section, nlohmann::json entries) {
    nlohmann::json doc;
    doc["format"] = kFormatName;
    doc["format_version"] = kTuningFormatVersion;
    doc["hardware"] = table.hardware();
    doc["lookup_rule"] =
        "smallest tuned m >= M; below the smallest tuned m the smallest; beyond the largest "
        "tuned m the largest";
    doc[section] = std::move(entries);
    return doc.dump(1) + "\n";
  };

  std::vector<fs::path> written;
  auto write = [&](const char* name, const char* section, nlohmann::json& entries) {
    if (entries.empty()) return;
    const fs::path file = dir / name;
    write_file_atomic(file, document(section, std::move(entries)));
    written.push_back(file);
  };
  write(kTuningFileCublasLt, "gemm", dense);
  write(kTuningFileCusparseLt, "gemm", sparse);
  write(kTuningFileKernels, "kernels", kernels);
  return written;
}

std::vector<std::string> list_tuning_keys(const fs::path& root) {
  std::vector<std::string> keys;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return keys;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory(ec)) continue;
    for (const char* name : kAllFiles) {
      if (fs::is_regular_file(entry.path() / name, ec)) {
        keys.push_back(entry.path().filename().string());
        break;
      }
    }
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

}  // namespace slidesparse
