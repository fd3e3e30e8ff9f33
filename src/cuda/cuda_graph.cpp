#include "cuda/cuda_graph.h"

#include <cstdio>
#include <utility>

#include "cuda/check.h"
#include "slidesparse/error.h"

namespace slidesparse {

CudaGraph::~CudaGraph() {
  if (exec_ != nullptr && cudaGraphExecDestroy(exec_) != cudaSuccess)
    std::fprintf(stderr, "slidesparse: cudaGraphExecDestroy failed\n");
  if (graph_ != nullptr && cudaGraphDestroy(graph_) != cudaSuccess)
    std::fprintf(stderr, "slidesparse: cudaGraphDestroy failed\n");
}

CudaGraph::CudaGraph(CudaGraph&& other) noexcept
    : graph_(std::exchange(other.graph_, nullptr)), exec_(std::exchange(other.exec_, nullptr)) {}

CudaGraph& CudaGraph::operator=(CudaGraph&& other) noexcept {
  if (this != &other) {
    CudaGraph old(std::move(*this));
    graph_ = std::exchange(other.graph_, nullptr);
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

CudaGraph CudaGraph::capture(cudaStream_t stream, const std::function<void()>& enqueue) {
  SS_REQUIRE(stream != nullptr, "CudaGraph::capture: needs a non-default stream");
  SS_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  CudaGraph g;
  try {
    enqueue();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(stream, &broken);
    if (broken != nullptr) cudaGraphDestroy(broken);
    cudaGetLastError();  // the failed capture's error is the exception's, not the next call's
    throw;
  }
  SS_CUDA_CHECK(cudaStreamEndCapture(stream, &g.graph_));
  SS_CUDA_CHECK(cudaGraphInstantiate(&g.exec_, g.graph_, 0));
  return g;
}

void CudaGraph::launch(cudaStream_t stream) const {
  SS_REQUIRE(exec_ != nullptr, "CudaGraph::launch: nothing captured");
  SS_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

}  // namespace slidesparse
