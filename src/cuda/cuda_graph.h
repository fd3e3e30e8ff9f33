// RAII owner of a captured CUDA graph and its executable instance: capture the work a callable
// enqueues on a stream, then replay it. Used for the engine's decode steps.
#pragma once

#include <cuda_runtime.h>

#include <functional>

namespace slidesparse {

class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  CudaGraph(CudaGraph&& other) noexcept;
  CudaGraph& operator=(CudaGraph&& other) noexcept;

  // Captures what `enqueue` puts on `stream` (global capture mode: any forbidden call in between,
  // a sync or an allocation, fails the capture) and instantiates it. On an exception the capture
  // is ended and discarded before rethrowing.
  static CudaGraph capture(cudaStream_t stream, const std::function<void()>& enqueue);

  void launch(cudaStream_t stream) const;
  bool valid() const { return exec_ != nullptr; }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace slidesparse
