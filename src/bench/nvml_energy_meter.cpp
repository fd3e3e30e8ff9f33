// NvmlEnergyMeter: NVML loaded with dlopen. Energy over a window is the difference of the GPU's
// total-energy counter (mJ since the driver loaded), read at start and stop; a thread samples the
// board power every few milliseconds for the mean power. Where the counter is not supported the
// energy is the mean sampled power times the window, and the reading says so.
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "bench/energy_meter.h"

namespace slidesparse {
namespace {

// nvml.h is not part of every CUDA toolkit install (it comes with the cuda-nvml-dev package, and
// this project's build machines lack it), so the few entry points used are declared here as
// NVML's C API defines them: nvmlReturn_t is an int-sized enum whose success value is 0 and
// nvmlDevice_t an opaque pointer.
using NvmlReturn = int;
constexpr NvmlReturn kNvmlSuccess = 0;
struct NvmlDeviceOpaque;
using NvmlDevice = NvmlDeviceOpaque*;
constexpr unsigned kNvmlDriverVersionBufferSize = 80;

using NvmlInitFn = NvmlReturn (*)();
using NvmlShutdownFn = NvmlReturn (*)();
using NvmlErrorStringFn = const char* (*)(NvmlReturn);
using NvmlHandleByPciBusIdFn = NvmlReturn (*)(const char*, NvmlDevice*);
using NvmlTotalEnergyFn = NvmlReturn (*)(NvmlDevice, unsigned long long*);
using NvmlPowerUsageFn = NvmlReturn (*)(NvmlDevice, unsigned int*);
using NvmlDriverVersionFn = NvmlReturn (*)(char*, unsigned int);

struct DlCloser {
  void operator()(void* handle) const {
    if (handle != nullptr) dlclose(handle);
  }
};

}  // namespace

struct NvmlEnergyMeter::Impl {
  std::unique_ptr<void, DlCloser> library;
  NvmlShutdownFn shutdown = nullptr;
  NvmlErrorStringFn error_string = nullptr;
  NvmlTotalEnergyFn total_energy = nullptr;
  NvmlPowerUsageFn power_usage = nullptr;
  NvmlDevice device = nullptr;
  bool initialized = false;
  bool counter_supported = false;
  std::string note;
  std::optional<std::string> driver_version;
  std::chrono::milliseconds interval{10};

  // The current window.
  unsigned long long counter_start_mj = 0;
  bool counter_started = false;
  std::jthread sampler;
  std::mutex mutex;
  std::condition_variable_any wake;
  double power_sum_mw = 0;  // written by the sampler only, read after it is joined
  int64_t power_samples = 0;

  std::string describe(NvmlReturn status) const {
    const char* text = error_string != nullptr ? error_string(status) : nullptr;
    return (text != nullptr ? std::string(text) : "NVML error") + " (" + std::to_string(status) +
           ")";
  }

  template <typename Fn>
  Fn symbol(const char* name) {
    return reinterpret_cast<Fn>(dlsym(library.get(), name));
  }

  void open(const std::string& path) {
    library.reset(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
    if (!library) {
      const char* why = dlerror();
      note = "NVML not available: cannot load " + path +
             (why != nullptr ? ": " + std::string(why) : "");
      return;
    }
    auto init = symbol<NvmlInitFn>("nvmlInit_v2");
    shutdown = symbol<NvmlShutdownFn>("nvmlShutdown");
    error_string = symbol<NvmlErrorStringFn>("nvmlErrorString");
    auto by_pci = symbol<NvmlHandleByPciBusIdFn>("nvmlDeviceGetHandleByPciBusId_v2");
    total_energy = symbol<NvmlTotalEnergyFn>("nvmlDeviceGetTotalEnergyConsumption");
    power_usage = symbol<NvmlPowerUsageFn>("nvmlDeviceGetPowerUsage");
    auto driver = symbol<NvmlDriverVersionFn>("nvmlSystemGetDriverVersion");
    if (init == nullptr || shutdown == nullptr || by_pci == nullptr || power_usage == nullptr) {
      note = "NVML not available: " + path +
             " lacks nvmlInit_v2 / nvmlShutdown / nvmlDeviceGetHandleByPciBusId_v2 / "
             "nvmlDeviceGetPowerUsage";
      return;
    }
    if (const NvmlReturn s = init(); s != kNvmlSuccess) {
      note = "NVML not available: nvmlInit_v2 failed: " + describe(s);
      return;
    }
    initialized = true;
    if (driver != nullptr) {
      char buffer[kNvmlDriverVersionBufferSize] = {};
      if (driver(buffer, kNvmlDriverVersionBufferSize) == kNvmlSuccess) driver_version = buffer;
    }
    // NVML numbers devices its own way; the PCI bus id names the device CUDA runs on.
    int cuda_device = 0;
    char bus_id[32] = {};
    if (cudaGetDevice(&cuda_device) != cudaSuccess ||
        cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), cuda_device) != cudaSuccess) {
      cudaGetLastError();  // tolerated: no device means no energy, said in the note
      note = "NVML not used: no CUDA device to match (cudaDeviceGetPCIBusId failed)";
      return;
    }
    if (const NvmlReturn s = by_pci(bus_id, &device); s != kNvmlSuccess) {
      note =
          std::string("NVML not used: no NVML device at PCI bus id ") + bus_id + ": " + describe(s);
      device = nullptr;
      return;
    }
    unsigned long long probe = 0;
    counter_supported = total_energy != nullptr && total_energy(device, &probe) == kNvmlSuccess;
  }

  void stop_sampler() {
    if (!sampler.joinable()) return;
    sampler.request_stop();
    wake.notify_all();
    sampler.join();
  }
};

NvmlEnergyMeter::NvmlEnergyMeter(const std::string& library, int sample_interval_ms)
    : impl_(std::make_unique<Impl>()) {
  impl_->interval = std::chrono::milliseconds(sample_interval_ms < 1 ? 1 : sample_interval_ms);
  impl_->open(library);
}

NvmlEnergyMeter::~NvmlEnergyMeter() {
  impl_->stop_sampler();
  if (impl_->initialized && impl_->shutdown != nullptr) impl_->shutdown();
}

bool NvmlEnergyMeter::available() const { return impl_->device != nullptr; }
const std::string& NvmlEnergyMeter::note() const { return impl_->note; }
std::optional<std::string> NvmlEnergyMeter::driver_version() const { return impl_->driver_version; }

void NvmlEnergyMeter::start() {
  Impl& m = *impl_;
  m.stop_sampler();
  m.power_sum_mw = 0;
  m.power_samples = 0;
  m.counter_started = false;
  if (!available()) return;
  if (m.counter_supported)
    m.counter_started = m.total_energy(m.device, &m.counter_start_mj) == kNvmlSuccess;
  m.sampler = std::jthread([&m](std::stop_token stop) {
    while (!stop.stop_requested()) {
      unsigned int milliwatts = 0;
      if (m.power_usage(m.device, &milliwatts) == kNvmlSuccess) {
        m.power_sum_mw += milliwatts;
        ++m.power_samples;
      }
      std::unique_lock lock(m.mutex);
      m.wake.wait_for(lock, stop, m.interval, [] { return false; });
    }
  });
}

EnergyReading NvmlEnergyMeter::stop(double window_s) {
  Impl& m = *impl_;
  EnergyReading reading;
  if (!available()) {
    reading.note = m.note;
    return reading;
  }
  unsigned long long counter_end_mj = 0;
  const bool counter_ok =
      m.counter_started && m.total_energy(m.device, &counter_end_mj) == kNvmlSuccess;
  m.stop_sampler();
  reading.power_samples = m.power_samples;
  if (m.power_samples > 0) reading.avg_power_w = m.power_sum_mw / 1000.0 / m.power_samples;
  if (counter_ok && counter_end_mj > m.counter_start_mj) {
    reading.energy_j = static_cast<double>(counter_end_mj - m.counter_start_mj) / 1000.0;
    reading.source = "nvml_energy_counter";
  } else if (reading.avg_power_w && window_s > 0) {
    reading.energy_j = *reading.avg_power_w * window_s;
    reading.source = "nvml_power_samples";
    reading.note = m.counter_supported
                       ? "the energy counter did not advance over the window; energy is mean "
                         "sampled power x window"
                       : "this GPU has no total-energy counter; energy is mean sampled power x "
                         "window";
  } else {
    reading.note = "NVML gave neither an energy difference nor a power sample for the window";
  }
  return reading;
}

}  // namespace slidesparse
