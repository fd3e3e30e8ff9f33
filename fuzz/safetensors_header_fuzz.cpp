// libFuzzer target for the safetensors header parser: any byte string is treated as a whole file.
// The parser must either return a header whose tensors tile the data region or throw FormatError;
// anything else (crash, sanitizer report, another exception type) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "io/safetensors.h"
#include "slidesparse/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    slidesparse::SafetensorsHeader header =
        slidesparse::parse_safetensors_header(file, size, "fuzz");
    // Invariants of an accepted header: every tensor lies inside the file, in offset order.
    const uint64_t data_size = size - header.data_offset();
    int64_t previous_end = 0;
    for (const slidesparse::TensorInfo& t : header.tensors) {
      if (t.begin != previous_end || t.end < t.begin || static_cast<uint64_t>(t.end) > data_size)
        std::abort();
      previous_end = t.end;
    }
    if (static_cast<uint64_t>(previous_end) != data_size) std::abort();
  } catch (const slidesparse::FormatError&) {
    // Expected for malformed input.
  }
  return 0;
}
