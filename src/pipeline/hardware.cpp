// The run's hardware record (see hardware.h).
#include "pipeline/hardware.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <sstream>

#include "slidesparse/error.h"
#include "slidesparse/tuning/tuning_db.h"

namespace slidesparse::pipeline {
namespace {

RunHardware make(const std::string& gpu_name, int cc, const LibraryVersions& versions,
                 std::string driver) {
  RunHardware h;
  h.gpu_name = gpu_name;
  GpuInfo info;
  info.name = gpu_name;
  h.short_name = info.short_name();
  h.cc = cc;
  h.driver = std::move(driver);
  h.versions = versions;
  HardwareKey key;
  key.gpu_name = gpu_name;
  key.cc = cc;
  key.cuda_runtime = versions.cuda_runtime;
  key.cublaslt = versions.cublaslt;
  key.cusparselt = versions.cusparselt_built ? versions.cusparselt : 0;
  h.hardware_key = key.dir_name();
  return h;
}

}  // namespace

std::string RunHardware::cc_text() const {
  return std::to_string(cc / 10) + "." + std::to_string(cc % 10);
}

std::string RunHardware::result_folder(const std::string& dtype) const {
  return result_folder_name(short_name, cc, dtype, versions.toolchain());
}

std::string RunHardware::fp8_note() const {
  if (supports_fp8()) return {};
  return "fp8 needs compute capability >= 8.9; " + gpu_name + " is cc " + cc_text() +
         ": FP8 cases recorded as skipped";
}

std::string nvidia_driver_version() {
  std::ifstream in("/proc/driver/nvidia/version");
  if (!in) return {};
  std::string line;
  std::getline(in, line);
  // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu ..."
  static const std::regex version(R"((\d+\.\d+(\.\d+)?))");
  const auto module = line.find("Module");
  const std::string tail = module == std::string::npos ? line : line.substr(module);
  std::smatch m;
  if (std::regex_search(tail, m, version)) return m[1].str();
  return {};
}

std::optional<RunHardware> query_run_hardware() {
  const auto gpu = query_gpu();
  if (!gpu) return std::nullopt;
  return make(gpu->name, gpu->cc(), query_library_versions(), nvidia_driver_version());
}

RunHardware fake_run_hardware(const std::string& gpu_name, int cc) {
  SS_REQUIRE(!gpu_name.empty() && cc >= 10 && cc < 1000,
             "fake GPU: a name and a compute capability such as 8.0 are needed, got '"
                 << gpu_name << "', cc " << cc);
  LibraryVersions versions;
  versions.cuda_runtime = 13000;  // fixed, so tests see stable folder names
  versions.cuda_driver = 13000;
  versions.cublaslt = 130100;
  versions.cusparselt = 800;
  versions.cusparselt_built = true;
  return make(gpu_name, cc, versions, "0.0 (fake GPU)");
}

RunHardware parse_fake_gpu(const std::string& text) {
  const auto comma = text.rfind(',');
  auto fail = [&]() {
    return Error("SLIDESPARSE_FAKE_GPU='" + text +
                 "': expected \"<GPU name>,<compute capability>\", e.g. "
                 "\"NVIDIA A100-SXM4-80GB,8.0\"");
  };
  if (comma == std::string::npos || comma == 0) throw fail();
  std::string cc_text = text.substr(comma + 1);
  cc_text.erase(std::remove(cc_text.begin(), cc_text.end(), '.'), cc_text.end());
  if (cc_text.empty() || !std::all_of(cc_text.begin(), cc_text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      }))
    throw fail();
  return fake_run_hardware(text.substr(0, comma), std::stoi(cc_text));
}

}  // namespace slidesparse::pipeline
