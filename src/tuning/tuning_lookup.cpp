// The process-wide active tuning table and the lookups layers and benchmarks call. Loaded lazily,
// once, for the current hardware key; refused tables leave one warning and the library defaults.
#include "slidesparse/tuning/tuning_lookup.h"

#include <cstdlib>
#include <mutex>
#include <sstream>

#include "slidesparse/tuning/tuning_db.h"

#ifndef SLIDESPARSE_SOURCE_DIR
#define SLIDESPARSE_SOURCE_DIR "."
#endif

namespace slidesparse {

namespace {

enum class Mode { kDefault, kDir, kDisabled, kExplicit };

struct ActiveTuning {
  std::mutex mutex;
  Mode mode = Mode::kDefault;
  std::filesystem::path dir;  // kDir
  bool resolved = false;
  std::shared_ptr<const TuningTable> table;
  std::string description;
};

ActiveTuning& state() {
  static ActiveTuning active;
  return active;
}

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::string(value) != "0";
}

// Loads the table for this hardware under `dir`; a refusal leaves no table and a description.
void load_from(ActiveTuning& s, const std::filesystem::path& dir) {
  const auto hardware = HardwareKey::current();
  if (!hardware) {
    s.description = "tuning: none (no CUDA GPU; tables live under " + dir.string() + ")";
    return;
  }
  s.table = load_tuning_table_or_none(dir, *hardware, &s.description);
}

// Resolves the active table under the held lock.
void resolve(ActiveTuning& s) {
  if (s.resolved) return;
  s.resolved = true;
  s.table.reset();
  switch (s.mode) {
    case Mode::kDisabled:
      s.description = "tuning: off (--no-tuning)";
      return;
    case Mode::kExplicit:
      return;  // set_active_tuning_table filled it in
    case Mode::kDir:
      load_from(s, s.dir);
      return;
    case Mode::kDefault:
      if (env_flag("SLIDESPARSE_NO_TUNING")) {
        s.description = "tuning: off (SLIDESPARSE_NO_TUNING is set)";
        return;
      }
      load_from(s, default_tuning_dir());
      return;
  }
}

std::shared_ptr<const TuningTable> current_table() {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  resolve(s);
  return s.table;
}

}  // namespace

std::filesystem::path default_tuning_dir() {
  const char* env = std::getenv("SLIDESPARSE_TUNING_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::filesystem::path(SLIDESPARSE_SOURCE_DIR) / "tuning";
}

void set_tuning_dir(const std::filesystem::path& dir) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.mode = Mode::kDir;
  s.dir = dir;
  s.resolved = false;
}

void disable_tuning() {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.mode = Mode::kDisabled;
  s.resolved = false;
}

void set_active_tuning_table(std::shared_ptr<const TuningTable> table, std::string source) {
  SS_REQUIRE(table != nullptr, "set_active_tuning_table: table is null");
  if (const auto hardware = HardwareKey::current(); hardware && !(*hardware == table->hardware())) {
    throw HardwareMismatchError("tuning table from " + source + " was made for " +
                                table->hardware().describe() + ", not for this " +
                                hardware->describe() + "; refusing to use it");
  }
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.mode = Mode::kExplicit;
  std::ostringstream os;
  os << "tuning: " << source << " (" << table->gemm_count() << " GEMM, " << table->kernel_count()
     << " kernel entries)";
  s.description = os.str();
  s.table = std::move(table);
  s.resolved = true;
}

void reset_active_tuning() {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.mode = Mode::kDefault;
  s.table.reset();
  s.resolved = false;
}

std::shared_ptr<const TuningTable> active_tuning_table() { return current_table(); }

std::string describe_active_tuning() {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  resolve(s);
  return s.description;
}

std::optional<GemmAlgorithm> lookup_tuned_gemm(const GemmProblemKey& key) {
  const auto table = current_table();
  if (!table) return std::nullopt;
  const GemmTuningEntry* entry = table->find_gemm(key);
  if (entry == nullptr) return std::nullopt;
  return entry->algorithm;
}

std::optional<KernelLaunchConfig> lookup_tuned_kernel(const KernelProblemKey& key) {
  const auto table = current_table();
  if (!table) return std::nullopt;
  const KernelTuningEntry* entry = table->find_kernel(key);
  if (entry == nullptr) return std::nullopt;
  return entry->config;
}

std::optional<bool> lookup_sparse_beats_dense(const GemmProblemKey& sparse_key) {
  const auto table = current_table();
  if (!table) return std::nullopt;
  const GemmTuningEntry* entry = table->find_gemm(sparse_key);
  if (entry == nullptr) return std::nullopt;
  return entry->sparse_beats_dense;
}

}  // namespace slidesparse
