// The Z:L sparsity pattern (Z = 2 zeros in every block of L consecutive weights along K), as the
// seed report writes it: "2:8" is 6:8 density. Holds the sliding-window geometry derived from L:
// N = L/2, N-1 windows of width 4 and stride 2 per block, 4(N-1) slots per block in W'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace slidesparse {

// K' is rounded up to this multiple (the sparse GEMM's alignment on the K dimension).
inline constexpr int64_t kSlideKAlign = 32;

class Sparsity {
 public:
  static constexpr int kZeros = 2;
  static constexpr int kMinBlock = 4;
  static constexpr int kMaxBlock = 1024;

  // Parses "2:8" or "2_8". Z must be 2 and L even, 4 <= L <= kMaxBlock; anything else throws
  // Error saying what is accepted.
  static Sparsity parse(std::string_view text);
  // Builds 2:L; same validation as parse.
  static Sparsity from_block(int block);

  Sparsity() : block_(4) {}

  int zeros() const { return kZeros; }
  int block() const { return block_; }                           // L
  int half() const { return block_ / 2; }                        // N
  int windows_per_block() const { return block_ / 2 - 1; }       // N-1
  int slots_per_block() const { return 4 * (block_ / 2 - 1); }   // 4(N-1)
  int max_nonzeros_per_block() const { return block_ - kZeros; }  // L-2
  // gamma = 4(N-1)/2N: 1.0, 1.333, 1.5, 1.6, 1.667 for L = 4, 6, 8, 10, 12.
  double expansion() const;
  // 2K/K' = L/(L-2): 2.0, 1.5, 1.333, 1.25 for L = 4, 6, 8, 10.
  double speedup_bound() const;

  // ceil(K/L)*L.
  int64_t k_pad(int64_t k) const;
  // (K_pad/L)*4(N-1), before alignment.
  int64_t k_slide_unaligned(int64_t k) const;
  // K' = k_slide_unaligned rounded up to kSlideKAlign.
  int64_t k_slide(int64_t k) const;

  std::string name() const;          // "2:8"
  std::string dir_name() const;      // "2_8" (file and folder names)
  std::string density_name() const;  // "6:8"

  bool operator==(const Sparsity&) const = default;

 private:
  explicit Sparsity(int block) : block_(block) {}
  int block_;
};

}  // namespace slidesparse
