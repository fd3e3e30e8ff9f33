// `slidesparse verify`: checks a converted checkpoint. Without a source: every slid weight is 2:4,
// un-slides to a Z:L weight, its scales are positive and finite, and W'.lift(x) == W.x on random x.
// With the source: the un-slid weight and the scales equal what the converter's own pruning and
// quantisation give on the source, W_source.x == W'.lift(x) exactly (int8: int32 accumulators;
// fp8: exact products summed in double), every other tensor is byte-identical, and the recorded
// source checksum matches.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

namespace slidesparse {

struct VerifyOptions {
  std::filesystem::path dir;
  std::optional<std::filesystem::path> source;
  int64_t sample_rows = 4;  // rows of random x per tensor
  uint64_t seed = 1;
  int threads = 0;  // 0: hardware_concurrency
  std::function<void(std::string_view)> progress;
};

struct VerifyReport {
  int64_t slid_tensors = 0;
  int64_t compared_with_source = 0;  // slid tensors checked against the source
  int64_t copied_tensors = 0;        // other tensors compared byte for byte
  bool checksum_checked = false;
};

// Throws Error / PatternError / FormatError naming the first tensor that fails.
VerifyReport verify_checkpoint(const VerifyOptions& options);

}  // namespace slidesparse
