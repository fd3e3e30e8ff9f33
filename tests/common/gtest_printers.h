// How GoogleTest prints the project's value types (parameter values in --gtest_list_tests and in
// ctest's test names, EXPECT_EQ failures): by name, not as "1-byte object <03>". Found by ADL.
#pragma once

#include <ostream>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse {

inline void PrintTo(DType dtype, std::ostream* os) { *os << dtype_name(dtype); }
inline void PrintTo(const Sparsity& sparsity, std::ostream* os) { *os << sparsity.name(); }

}  // namespace slidesparse
