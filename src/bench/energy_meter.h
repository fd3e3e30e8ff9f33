// GPU energy over a measured window. The benchmarks see only EnergyMeter; NvmlEnergyMeter reads
// NVML, loaded at run time with dlopen (no link dependency on the driver's library), so a build
// or a machine without NVML still runs and reports energy as absent, with the reason, never as
// a guess.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace slidesparse {

struct EnergyReading {
  std::optional<double> energy_j;     // over the whole window
  std::optional<double> avg_power_w;  // mean of the power samples taken during the window
  int64_t power_samples = 0;
  // "nvml_energy_counter" (difference of the total-energy counter), "nvml_power_samples" (mean
  // sampled power times the window, where the counter is not supported) or "" (none).
  std::string source;
  std::string note;  // why a field is absent, or a caveat; "" when nothing to say
};

class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;
  // Starts a window (and the power sampling).
  virtual void start() = 0;
  // Ends the window started last; `window_s` is its wall time as the caller measured it.
  virtual EnergyReading stop(double window_s) = 0;
};

// NVML for the current CUDA device (matched by PCI bus id). `library` is the file dlopen loads.
// Never throws for a missing or failing NVML: available() is false and every reading carries
// note().
class NvmlEnergyMeter : public EnergyMeter {
 public:
  explicit NvmlEnergyMeter(const std::string& library = "libnvidia-ml.so.1",
                           int sample_interval_ms = 10);
  ~NvmlEnergyMeter() override;
  NvmlEnergyMeter(const NvmlEnergyMeter&) = delete;
  NvmlEnergyMeter& operator=(const NvmlEnergyMeter&) = delete;

  bool available() const;
  const std::string& note() const;  // why not available ("" when it is)
  // The NVIDIA driver version ("580.159.04"), when NVML gave it.
  std::optional<std::string> driver_version() const;

  void start() override;
  EnergyReading stop(double window_s) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slidesparse
