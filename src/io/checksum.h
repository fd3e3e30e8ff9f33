// FNV-1a 64-bit digest (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over raw bytes,
// streamed. Used to record which source files a converted checkpoint came from; it detects
// accidental change, not tampering (no new crypto dependency).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace slidesparse {

class Fnv1a64 {
 public:
  void update(std::span<const std::byte> data);
  uint64_t value() const { return state_; }
  std::string hex() const;  // 16 lowercase hex digits

 private:
  uint64_t state_ = 0xcbf29ce484222325ull;
};

// Digest of a whole file, read in chunks (bounded memory).
std::string fnv1a64_file_hex(const std::filesystem::path& path);

}  // namespace slidesparse
