// Shape validation helpers for the CPU reference (see shape_check.h).
#include "core/shape_check.h"

#include <limits>
#include <string>

#include "slidesparse/error.h"

namespace slidesparse::detail {

int64_t checked_elements(std::string_view function, std::string_view operand, int64_t rows,
                         int64_t cols) {
  SS_REQUIRE(rows >= 1 && cols >= 1, function << ": " << operand << " has shape [" << rows << ", "
                                              << cols << "]; both dimensions must be >= 1");
  SS_REQUIRE(rows <= std::numeric_limits<int64_t>::max() / cols,
             function << ": " << operand << " shape [" << rows << ", " << cols
                      << "] overflows 64-bit element count");
  return rows * cols;
}

void require_matrix(std::string_view function, std::string_view operand, size_t size, int64_t rows,
                    int64_t cols) {
  const int64_t expected = checked_elements(function, operand, rows, cols);
  SS_REQUIRE(static_cast<uint64_t>(size) == static_cast<uint64_t>(expected),
             function << ": " << operand << " holds " << size << " elements, expected [" << rows
                      << ", " << cols << "] = " << expected);
}

void require_vector(std::string_view function, std::string_view operand, size_t size,
                    int64_t expected, bool allow_empty) {
  if (allow_empty && size == 0) return;
  SS_REQUIRE(static_cast<uint64_t>(size) == static_cast<uint64_t>(expected),
             function << ": " << operand << " holds " << size << " elements, expected " << expected
                      << (allow_empty ? " (or none)" : ""));
}

}  // namespace slidesparse::detail
