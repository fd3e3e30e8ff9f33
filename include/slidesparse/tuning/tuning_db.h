// The tuning database: per hardware key (GPU, compute capability, CUDA runtime, cuBLASLt and
// cuSPARSELt versions) the best GEMM algorithm and kernel launch configuration found for each
// problem and M. Stored as JSON files under <root>/<HardwareKey::dir_name()>/; every file repeats
// the key in its header and a file whose key differs from the current one is refused, never used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "slidesparse/error.h"
#include "slidesparse/gemm/gemm_algorithm.h"
#include "slidesparse/tuning/tuning_lookup.h"

namespace slidesparse {

// A table was made on other hardware or with other library versions (cuSPARSELt algorithm ids
// change between versions, so such a table must not be applied).
class HardwareMismatchError : public Error {
 public:
  using Error::Error;
};

struct HardwareKey {
  std::string gpu_name;  // cudaDeviceProp::name, "NVIDIA H100 80GB HBM3"
  int cc = 0;            // 90 for sm_90
  int cuda_runtime = 0;  // 13000
  int64_t cublaslt = 0;  // 130100
  int cusparselt = 0;    // 800; 0 when the sparse backend is not built

  // The current GPU and libraries; nullopt when no GPU is usable.
  static std::optional<HardwareKey> current();
  // "H100_cc90_cuda13.0_cublaslt130100_cusparselt800": the folder holding this key's files.
  std::string dir_name() const;
  // "NVIDIA H100 80GB HBM3, cc 9.0, CUDA 13.0, cuBLASLt 130100, cuSPARSELt 800"
  std::string describe() const;
  bool operator==(const HardwareKey&) const = default;
};

void to_json(nlohmann::json& j, const HardwareKey& key);
void from_json(const nlohmann::json& j, HardwareKey& key);

// The best algorithm found for one GEMM problem at one M.
struct GemmTuningEntry {
  GemmProblemKey key;       // key.k is K' for the sparse backend
  GemmAlgorithm algorithm;  // the winner
  double time_us = 0;       // its median time
  double default_time_us =
      0;                     // the library default's median time on the same problem (0: not timed)
  int candidates_tried = 0;  // how many candidates ran (for reports)
  // Sparse entries only: the tuned dense GEMM of the same layer (K, not K') at the same M, and
  // whether this sparse GEMM beat it (for later dense/sparse dispatch).
  std::optional<double> dense_time_us;
  std::optional<bool> sparse_beats_dense;
  std::string sparsity;  // "2:8" for sparse entries (several patterns can share one K')
};

// The best launch configuration found for one memory-bound kernel at one M.
struct KernelTuningEntry {
  KernelProblemKey key;
  KernelLaunchConfig config;
  double time_us = 0;
  double default_time_us = 0;
};

void to_json(nlohmann::json& j, const GemmTuningEntry& e);
void from_json(const nlohmann::json& j, GemmTuningEntry& e);
void to_json(nlohmann::json& j, const KernelTuningEntry& e);
void from_json(const nlohmann::json& j, KernelTuningEntry& e);

// In-memory table for one hardware key. Lookup rule for M: the entry with the smallest tuned
// M >= M; below the smallest tuned M that is the smallest; beyond the largest tuned M the largest
// (large-M GEMMs are compute bound and their best algorithm changes little past the last tuned M).
class TuningTable {
 public:
  TuningTable() = default;
  explicit TuningTable(HardwareKey hardware) : hardware_(std::move(hardware)) {}

  const HardwareKey& hardware() const { return hardware_; }

  // Insert or replace (same problem and M).
  void put(const GemmTuningEntry& entry);
  void put(const KernelTuningEntry& entry);

  // Lookup with the M rule above; nullptr when the problem has no entry at all.
  const GemmTuningEntry* find_gemm(const GemmProblemKey& key) const;
  const KernelTuningEntry* find_kernel(const KernelProblemKey& key) const;
  // Exactly this M (resuming a search).
  const GemmTuningEntry* find_gemm_exact(const GemmProblemKey& key) const;
  const KernelTuningEntry* find_kernel_exact(const KernelProblemKey& key) const;

  std::vector<GemmTuningEntry> gemm_entries() const;
  std::vector<KernelTuningEntry> kernel_entries() const;
  size_t gemm_count() const;
  size_t kernel_count() const;
  bool empty() const { return gemm_count() == 0 && kernel_count() == 0; }

 private:
  // Problem without M -> (M -> entry).
  // backend, dtype, out, n, k, fast_accum
  using GemmShape = std::tuple<int, int, int, int64_t, int64_t, bool>;
  using KernelShape = std::tuple<std::string, int, int, int64_t>;  // kernel, dtype, block, cols
  static GemmShape shape_of(const GemmProblemKey& key);
  static KernelShape shape_of(const KernelProblemKey& key);

  HardwareKey hardware_;
  std::map<GemmShape, std::map<int64_t, GemmTuningEntry>> gemm_;
  std::map<KernelShape, std::map<int64_t, KernelTuningEntry>> kernel_;
};

// File names inside a key's folder: one per backend plus one for kernel launches, so the coarse
// and fine stages write their own files.
inline constexpr const char* kTuningFileCublasLt = "gemm_cublaslt.json";
inline constexpr const char* kTuningFileCusparseLt = "gemm_cusparselt.json";
inline constexpr const char* kTuningFileKernels = "kernels.json";
inline constexpr int kTuningFormatVersion = 1;

// <root>/<hardware.dir_name()>
std::filesystem::path tuning_table_dir(const std::filesystem::path& root,
                                       const HardwareKey& hardware);

// Loads the table for `hardware` from <root>/<hardware.dir_name()>/. A missing folder or file
// gives an empty (part of the) table. Throws FormatError for unreadable or malformed JSON (naming
// the file and the field) and HardwareMismatchError when a file's header names another key.
TuningTable load_tuning_table(const std::filesystem::path& root, const HardwareKey& hardware);

// What the run-time lookup does with a folder: the table for `hardware`, or nullptr when there is
// none or it was refused (other key, malformed JSON). Never throws; `description` receives the
// one line `slidesparse info` prints, and a refusal also prints one warning on stderr.
std::shared_ptr<const TuningTable> load_tuning_table_or_none(const std::filesystem::path& root,
                                                             const HardwareKey& hardware,
                                                             std::string* description);

// Reads one table file whatever its key (for tools and tests). Throws FormatError.
TuningTable read_tuning_file(const std::filesystem::path& file);

// Writes the table's files into <root>/<dir_name()>/ (each through a temporary file and a rename)
// and returns the paths written. Files for which the table has no entries are not written.
std::vector<std::filesystem::path> save_tuning_table(const TuningTable& table,
                                                     const std::filesystem::path& root);

// The key folders present under `root` (for messages such as "tables here are for ...").
std::vector<std::string> list_tuning_keys(const std::filesystem::path& root);

}  // namespace slidesparse
