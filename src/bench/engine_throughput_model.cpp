// The prefill / decode benchmarks' ThroughputModel on slidesparse::Engine: random full-size
// weights of a named model (ModelSource::random, no model hub), every linear on the benchmark's
// backend. The only file of the benchmarks that includes the engine's header.
#include "bench/throughput_model.h"


#include "slidesparse/engine/engine.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

class EngineThroughputModel final : public ThroughputModel {
 public:
  explicit EngineThroughputModel(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}

  std::string describe() const override { return engine_->describe(); }
  int64_t vocab_size() const override { return engine_->config().vocab; }
  void start_batch(std::span<const int64_t> max_tokens) override {
    engine_->start_batch(max_tokens);
  }
  StepOutcome prefill(std::span<const std::vector<int32_t>> prompts) override {
    StepResult step = engine_->prefill(prompts);
    return {std::move(step.tokens), step.gpu_ms};
  }
  StepOutcome decode() override {
    StepResult step = engine_->decode();
    return {std::move(step.tokens), step.gpu_ms};
  }
  void end_batch() override { engine_->end_batch(); }

 private:
  std::unique_ptr<Engine> engine_;
};

}  // namespace

std::unique_ptr<ThroughputModel> make_engine_model(const EngineSpec& spec) {
  // The engine names the backends itself; the two lists must agree.
  const EngineBackendChoice choice = parse_engine_backend(spec.backend.name);
  SS_REQUIRE(choice.backend == spec.backend.backend &&
                 choice.fast_accum == spec.backend.fast_accum &&
                 engine_backend_name(choice) == spec.backend.name,
             "bench: backend '" << spec.backend.name << "' means " << engine_backend_name(choice)
                                << " to the engine; the benchmark and engine disagree");
  EngineOptions options;
  options.backend = choice.backend;
  options.fast_accum = choice.fast_accum;
  options.sparsity = spec.sparsity;
  options.compute = spec.dtype;
  options.epilogue = spec.epilogue;
  options.use_tuning = spec.use_tuning;
  options.max_batch = spec.max_batch;
  options.max_tokens_per_step = spec.max_tokens_per_step;
  options.kv_cache_tokens = spec.kv_cache_tokens;
  options.page_size = spec.page_size;
  return std::make_unique<EngineThroughputModel>(
      Engine::load(ModelSource::random(spec.model), options));
}

}  // namespace slidesparse
