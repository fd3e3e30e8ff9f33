// Shape validation shared by the CPU reference functions: every public entry point checks its
// sizes up front and throws Error naming the function, the operand and the sizes it got.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace slidesparse::detail {

// rows * cols as int64, or Error when either is < 1 or the product overflows int64.
int64_t checked_elements(std::string_view function, std::string_view operand, int64_t rows,
                         int64_t cols);

// Throws Error unless rows, cols >= 1 and size == rows * cols.
void require_matrix(std::string_view function, std::string_view operand, size_t size, int64_t rows,
                    int64_t cols);

// Throws Error unless size == expected, or size == 0 when allow_empty.
void require_vector(std::string_view function, std::string_view operand, size_t size,
                    int64_t expected, bool allow_empty);

}  // namespace slidesparse::detail
