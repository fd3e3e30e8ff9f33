#include "slidesparse/sparsity.h"

#include <charconv>
#include <string>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

[[noreturn]] void refuse(std::string_view text, const std::string& why) {
  throw Error("invalid sparsity '" + std::string(text) + "': " + why +
              ". Accepted: Z:L or Z_L with Z = 2 zeros per block and L even, 4 <= L <= " +
              std::to_string(Sparsity::kMaxBlock) + " (2:4, 2:6, 2:8, 2:10, ...)");
}

int parse_int(std::string_view whole, std::string_view part) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
  if (ec != std::errc() || ptr != part.data() + part.size() || part.empty()) {
    // Appended, not "'" + std::string(part): GCC 12 -O2 warns (-Wrestrict, a false positive) on
    // operator+(const char*, std::string&&).
    std::string why = "'";
    why.append(part);
    why += "' is not a whole number";
    refuse(whole, why);
  }
  return value;
}

}  // namespace

Sparsity Sparsity::parse(std::string_view text) {
  size_t sep = text.find_first_of(":_");
  if (sep == std::string_view::npos) refuse(text, "expected Z:L");
  int z = parse_int(text, text.substr(0, sep));
  int l = parse_int(text, text.substr(sep + 1));
  if (z != kZeros) refuse(text, "Z must be 2 (got " + std::to_string(z) + ")");
  if (l < kMinBlock || l > kMaxBlock) refuse(text, "L out of range (got " + std::to_string(l) + ")");
  if (l % 2 != 0) refuse(text, "L must be even (got " + std::to_string(l) + ")");
  return Sparsity(l);
}

Sparsity Sparsity::from_block(int block) { return parse("2:" + std::to_string(block)); }

double Sparsity::expansion() const {
  return static_cast<double>(slots_per_block()) / static_cast<double>(block_);
}

double Sparsity::speedup_bound() const {
  return static_cast<double>(block_) / static_cast<double>(block_ - kZeros);
}

int64_t Sparsity::k_pad(int64_t k) const { return (k + block_ - 1) / block_ * block_; }

int64_t Sparsity::k_slide_unaligned(int64_t k) const {
  return k_pad(k) / block_ * slots_per_block();
}

int64_t Sparsity::k_slide(int64_t k) const {
  return (k_slide_unaligned(k) + kSlideKAlign - 1) / kSlideKAlign * kSlideKAlign;
}

std::string Sparsity::name() const { return "2:" + std::to_string(block_); }
std::string Sparsity::dir_name() const { return "2_" + std::to_string(block_); }
std::string Sparsity::density_name() const {
  return std::to_string(block_ - kZeros) + ":" + std::to_string(block_);
}

}  // namespace slidesparse
