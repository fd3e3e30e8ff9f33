// Streaming FNV-1a 64 (see checksum.h).
#include "io/checksum.h"

#include <cstdio>
#include <fstream>
#include <vector>

#include "slidesparse/error.h"

namespace slidesparse {

void Fnv1a64::update(std::span<const std::byte> data) {
  uint64_t h = state_;
  for (std::byte b : data) {
    h ^= static_cast<uint64_t>(b);
    h *= 0x100000001b3ull;
  }
  state_ = h;
}

std::string Fnv1a64::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(state_));
  return buf;
}

std::string fnv1a64_file_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path.string() + " to checksum it");
  std::vector<char> buffer(8u << 20);
  Fnv1a64 h;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    h.update(std::as_bytes(std::span(buffer.data(), static_cast<size_t>(got))));
  }
  if (in.bad()) throw Error("read error while checksumming " + path.string());
  return h.hex();
}

}  // namespace slidesparse
