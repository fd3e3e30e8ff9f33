// Shared GPU timing harness: CUDA events around each call, warm-up first, median of many runs,
// several closures timed round-robin (interleaved) so clock swings under the power cap hit every
// variant alike, and input rotation so inputs that fit in L2 are not timed from the cache.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace slidesparse {

struct TimingOptions {
  int warmup = 10;   // untimed calls of each closure first
  int repeats = 50;  // timed calls of each closure
};

struct TimingResult {
  double median_ms = 0;
  double min_ms = 0;
  double p90_ms = 0;
  int runs = 0;
};

// A closure to time; it gets the iteration number (for input rotation) and enqueues its work on
// the stream it was built for. Nothing may be allocated or created inside it.
using TimedFn = std::function<void(int iteration)>;

// Times every closure `repeats` times in round-robin order (f0, f1, ..., f0, f1, ...), each call
// between its own pair of events on `stream`. All events are created before the first call.
std::vector<TimingResult> time_interleaved(cudaStream_t stream, const std::vector<TimedFn>& fns,
                                           TimingOptions options);
TimingResult time_one(cudaStream_t stream, const TimedFn& fn, TimingOptions options);

// How many copies of an input of `bytes` to rotate through so that consecutive calls do not find
// it in an L2 of `l2_bytes`: 1 when it is larger than twice the L2, else enough to cover 3x the
// L2, at most `max_copies`.
int rotation_count(size_t bytes, int64_t l2_bytes, int max_copies = 8);

double median(std::vector<double> values);

}  // namespace slidesparse
