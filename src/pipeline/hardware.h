// The machine a prepare-bench run is on: GPU, compute capability, driver, library versions and
// the hardware key (the tuning table's folder name, also written into every case JSON). Queried
// once from src/cuda/device_info; tests inject a made-up GPU instead (PipelineOptions::hardware).
#pragma once

#include <optional>
#include <string>

#include "cuda/device_info.h"

namespace slidesparse::pipeline {

struct RunHardware {
  std::string gpu_name;    // "NVIDIA H200"
  std::string short_name;  // GpuInfo::short_name(): "H200"
  int cc = 0;              // 90
  std::string driver;      // "580.159.04"; empty when the kernel module does not say
  LibraryVersions versions;
  std::string hardware_key;  // HardwareKey::dir_name(): "NVIDIA_H200_cc90_cuda13.0_..."

  std::string cc_text() const;  // "9.0"
  // <results>/<stage>/ folder of one precision: "H200_cc90_FP8_cuda13.0".
  std::string result_folder(const std::string& dtype) const;
  bool supports_fp8() const { return cc >= 89; }
  // The note recorded once in run.json when FP8 cannot run here; empty when it can.
  std::string fp8_note() const;
};

// The current GPU, or nullopt when no usable GPU and driver are present.
std::optional<RunHardware> query_run_hardware();

// A GPU of that name and compute capability (cc 80 for "8.0") with this build's library
// versions, for tests and the $SLIDESPARSE_FAKE_GPU hook; no GPU is touched.
RunHardware fake_run_hardware(const std::string& gpu_name, int cc);

// Parses $SLIDESPARSE_FAKE_GPU-style text "NVIDIA A100-SXM4-80GB,8.0" (cc also as "80");
// throws Error naming the accepted form.
RunHardware parse_fake_gpu(const std::string& text);

// The NVIDIA kernel module's version ("580.159.04") from /proc/driver/nvidia/version; empty when
// the file is absent or does not name one.
std::string nvidia_driver_version();

}  // namespace slidesparse::pipeline
