// Contiguous row chunks on std::jthread workers (see parallel_rows.h).
#include "core/parallel_rows.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace slidesparse {

void parallel_rows(int64_t rows, int64_t cols, int threads,
                   const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  constexpr int64_t kMinElementsPerThread = 1 << 18;
  const int64_t by_work =
      std::max<int64_t>(1, rows * std::max<int64_t>(cols, 1) / kMinElementsPerThread);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>({threads, rows, by_work}));
  if (chunks == 1) {
    fn(0, rows);
    return;
  }
  std::exception_ptr first_error;
  std::mutex mutex;
  std::vector<std::jthread> workers;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = rows * c / chunks;
    const int64_t r1 = rows * (c + 1) / chunks;
    workers.emplace_back([&, r0, r1] {
      try {
        fn(r0, r1);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!first_error) first_error = std::current_exception();
      }
    });
  }
  workers.clear();  // joins
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace slidesparse
