// Row-parallel loops for the host's weight preparation (the converter's multi-GB weights on a
// development machine's few cores): rows are independent, so a chunked run gives the same bits.
#pragma once

#include <cstdint>
#include <functional>

namespace slidesparse {

// Runs fn(row_begin, row_end) over [0, rows) in up to `threads` contiguous chunks; inline when
// threads <= 1 or rows * cols is too small to pay for starting threads. The first exception thrown
// by any chunk is rethrown after all chunks finish.
void parallel_rows(int64_t rows, int64_t cols, int threads,
                   const std::function<void(int64_t, int64_t)>& fn);

}  // namespace slidesparse
