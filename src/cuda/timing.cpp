#include "cuda/timing.h"

#include <algorithm>
#include <cmath>

#include "cuda/resources.h"
#include "slidesparse/error.h"

namespace slidesparse {

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

std::vector<TimingResult> time_interleaved(cudaStream_t stream, const std::vector<TimedFn>& fns,
                                           TimingOptions options) {
  SS_REQUIRE(options.repeats >= 1, "timing: repeats must be >= 1, got " << options.repeats);
  const size_t count = fns.size();
  for (int w = 0; w < options.warmup; ++w)
    for (const auto& fn : fns) fn(w);
  // Events for every call exist before the first timed one.
  const size_t calls = count * static_cast<size_t>(options.repeats);
  std::vector<CudaEvent> start(calls), stop(calls);
  for (int r = 0; r < options.repeats; ++r) {
    for (size_t f = 0; f < count; ++f) {
      const size_t i = static_cast<size_t>(r) * count + f;
      start[i].record(stream);
      fns[f](options.warmup + r);
      stop[i].record(stream);
    }
  }
  SS_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<TimingResult> results(count);
  for (size_t f = 0; f < count; ++f) {
    std::vector<double> ms;
    ms.reserve(options.repeats);
    for (int r = 0; r < options.repeats; ++r) {
      const size_t i = static_cast<size_t>(r) * count + f;
      ms.push_back(stop[i].elapsed_ms_since(start[i]));
    }
    std::sort(ms.begin(), ms.end());
    TimingResult& t = results[f];
    t.runs = options.repeats;
    t.median_ms = median(ms);
    t.min_ms = ms.front();
    t.p90_ms = ms[std::min(ms.size() - 1, static_cast<size_t>(std::ceil(0.9 * ms.size())) - 1)];
  }
  return results;
}

TimingResult time_one(cudaStream_t stream, const TimedFn& fn, TimingOptions options) {
  return time_interleaved(stream, {fn}, options).front();
}

int rotation_count(size_t bytes, int64_t l2_bytes, int max_copies) {
  if (bytes == 0) return 1;
  const double l2 = static_cast<double>(std::max<int64_t>(l2_bytes, 1));
  if (static_cast<double>(bytes) > 2.0 * l2) return 1;
  const int copies = static_cast<int>(std::ceil(3.0 * l2 / static_cast<double>(bytes)));
  return std::clamp(copies, 2, std::max(max_copies, 2));
}

}  // namespace slidesparse
