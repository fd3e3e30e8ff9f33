// `slidesparse info`: the Z:L patterns and what they cost/gain on 2:4 hardware, then the GPU and
// CUDA library versions this process sees. `--gpu-present` is the quiet probe scripts/run.sh uses
// (exit 0 with a usable GPU, 3 without). print_info() is the one place that prints, so later
// sections (e.g. the tuning table in use) go there.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cuda/device_info.h"
#include "slidesparse/sparsity.h"
#include "slidesparse/tuning/tuning_lookup.h"

namespace slidesparse::cli {
namespace {

constexpr int kGpuAbsentExitCode = 3;
constexpr int64_t kExampleK = 4096;

struct InfoOptions {
  std::string sparsity;  // empty: all of 2:4 ... 2:16
  bool gpu_present = false;
};

std::vector<Sparsity> patterns_to_show(const std::string& sparsity) {
  if (!sparsity.empty()) return {Sparsity::parse(sparsity)};
  std::vector<Sparsity> all;
  for (int block = 4; block <= 16; block += 2) all.push_back(Sparsity::from_block(block));
  return all;
}

// "ceil(K/8)*12 ^32": the K' rule of one pattern, with its numbers filled in.
std::string k_slide_rule(Sparsity sp) {
  std::ostringstream os;
  os << "ceil(K/" << sp.block() << ")*" << sp.slots_per_block() << " ^" << kSlideKAlign;
  return os.str();
}

// cudaRuntimeGetVersion / cudaDriverGetVersion style: 13000 -> "13.0".
std::string cuda_version_text(int v) {
  if (v <= 0) return "none";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// cublasLtGetVersion: major*10000 + minor*100 + patch.
std::string cublaslt_version_text(int64_t v) {
  return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." +
         std::to_string(v % 100);
}

// CUSPARSELT_VERSION: major*1000 + minor*100 + patch.
std::string cusparselt_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v / 100) % 10) + "." +
         std::to_string(v % 100);
}

std::string gib_text(int64_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1024.0 * 1024 * 1024)
     << " GiB";
  return os.str();
}

void print_pattern_table(std::ostream& os, const std::vector<Sparsity>& patterns) {
  os << "Z:L patterns (Z = 2 zeros in every block of L weights along K), run on 2:4 hardware\n"
     << "  K' = ceil(K/L)*4(N-1) rounded up to " << kSlideKAlign
     << " (N = L/2); gamma = K'/K before rounding; speed-up bound 2K/K' = L/(L-2)\n\n";
  os << std::left << std::setw(9) << "pattern" << std::setw(9) << "density" << std::setw(8)
     << "sparse" << std::setw(8) << "gamma" << std::setw(20) << "K' rule" << std::right
     << std::setw(13) << "K' (K=4096)" << std::setw(16) << "speed-up bound"
     << "\n";
  for (const Sparsity& sp : patterns) {
    std::ostringstream sparse, gamma, bound;
    sparse << std::fixed << std::setprecision(1) << 100.0 * sp.zeros() / sp.block() << "%";
    gamma << std::fixed << std::setprecision(3) << sp.expansion();
    bound << std::fixed << std::setprecision(3) << sp.speedup_bound() << "x";
    os << std::left << std::setw(9) << sp.name() << std::setw(9) << sp.density_name()
       << std::setw(8) << sparse.str() << std::setw(8) << gamma.str() << std::setw(20)
       << k_slide_rule(sp) << std::right << std::setw(13) << sp.k_slide(kExampleK) << std::setw(16)
       << bound.str() << "\n";
  }
}

void print_device_section(std::ostream& os) {
  os << "\nDevice\n";
  const std::optional<GpuInfo> gpu = query_gpu();
  if (gpu) {
    os << "  GPU          " << gpu->name << " (cc " << gpu->cc_major << "." << gpu->cc_minor << ", "
       << gpu->sm_count << " SMs, " << gib_text(gpu->memory_bytes) << ", L2 "
       << gpu->l2_bytes / (1024 * 1024) << " MiB)\n";
  } else {
    os << "  GPU          no GPU (no usable CUDA device or driver)\n";
  }
  const LibraryVersions v = query_library_versions();
  os << "  CUDA         runtime " << cuda_version_text(v.cuda_runtime) << ", driver "
     << cuda_version_text(v.cuda_driver) << "\n";
  os << "  cuBLASLt     " << cublaslt_version_text(v.cublaslt) << "\n";
  if (v.cusparselt_built) {
    os << "  cuSPARSELt   " << cusparselt_version_text(v.cusparselt)
       << (gpu ? "" : " (header version; no GPU to ask the library)") << "\n";
  } else {
    os << "  cuSPARSELt   not built in (sparse backend disabled)\n";
  }
}

// Everything `info` prints; new sections (e.g. the tuning table in use) belong here.
void print_info(std::ostream& os, const std::vector<Sparsity>& patterns) {
  print_pattern_table(os, patterns);
  print_device_section(os);
  os << "\nTuning\n  " << describe_active_tuning() << "\n";
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Show the Z:L patterns (gamma, K', speed-up bound) and the GPU / CUDA libraries");
  cmd->add_option("--sparsity", options->sparsity, "Show only this pattern, e.g. 2:8");
  cmd->add_flag("--gpu-present", options->gpu_present,
                "Print nothing; exit 0 if a usable GPU is present, 3 otherwise");
  cmd->callback([options] {
    if (options->gpu_present) {
      if (!gpu_available()) throw CLI::RuntimeError(kGpuAbsentExitCode);
      return;
    }
    print_info(std::cout, patterns_to_show(options->sparsity));
  });
}

}  // namespace slidesparse::cli
