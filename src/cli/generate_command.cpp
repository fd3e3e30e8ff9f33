// `slidesparse generate`: greedy generation through the engine (include/slidesparse/engine), the
// same path the prefill/decode benchmarks and the engine tests use. Prints the generated token
// ids of every sequence, prefill and decode throughput and the GPU memory the engine holds.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "io/slide_manifest.h"
#include "slidesparse/engine/engine.h"
#include "slidesparse/error.h"

namespace slidesparse::cli {

namespace {

struct GenerateArgs {
  std::string model_dir;
  std::string random;
  std::string backend = "cublaslt";
  std::string sparsity;
  std::string dtype = "int8";
  std::string epilogue = "fused";
  std::vector<int32_t> prompt_tokens;
  int64_t prompt_len = 0;
  int64_t batch = 1;
  int64_t max_new_tokens = 16;
  int64_t layers = 0;
  int repeats = 1;
  uint64_t seed = 1;
  bool no_graphs = false;
  bool no_tuning = false;
  bool quiet = false;
  bool profile = false;
};

void print_profile(const char* what, const StepResult& r) {
  double total = 0;
  for (const auto& [op, ms] : r.op_ms) total += ms;
  std::cout << "profile of " << what << ": " << std::fixed << std::setprecision(3) << total
            << " ms in ops (step " << r.gpu_ms << " ms)\n";
  for (const auto& [op, ms] : r.op_ms)
    std::cout << "  " << std::left << std::setw(14) << op << std::right << std::setw(10) << ms
              << " ms " << std::setw(6) << std::setprecision(1) << 100 * ms / total << "%\n"
              << std::setprecision(3);
}

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

void run_generate(const GenerateArgs& a) {
  SS_REQUIRE(a.model_dir.empty() != a.random.empty(),
             "generate: give exactly one of --model DIR and --random NAME|CONFIG");
  SS_REQUIRE(a.prompt_tokens.empty() != (a.prompt_len == 0),
             "generate: give exactly one of --prompt-tokens and --prompt-len");
  SS_REQUIRE(a.prompt_len >= 0 && a.batch >= 1 && a.max_new_tokens >= 1,
             "generate: --prompt-len, --batch and --max-new-tokens must be positive");
  SS_REQUIRE(a.prompt_tokens.empty() || a.batch == 1,
             "generate: --prompt-tokens gives one sequence; --batch goes with --prompt-len");
  EngineOptions opt;
  const EngineBackendChoice choice = parse_engine_backend(a.backend);
  opt.backend = choice.backend;
  opt.fast_accum = choice.fast_accum;
  opt.compute = parse_dtype(a.dtype);
  SS_REQUIRE(
      opt.compute == DType::kI8 || opt.compute == DType::kFP8E4M3 || opt.compute == DType::kBF16,
      "generate: --dtype " << a.dtype << " is not one of int8, fp8, bf16");
  if (!a.sparsity.empty()) opt.sparsity = Sparsity::parse(a.sparsity);
  opt.epilogue = parse_epilogue(a.epilogue);
  opt.use_tuning = !a.no_tuning;
  opt.cuda_graphs = !a.no_graphs;
  opt.profile_ops = a.profile;
  ModelSource source;
  if (!a.model_dir.empty()) {
    source = ModelSource::checkpoint(a.model_dir);
    // A SlideSparse checkpoint fixes backend, pattern and precision: take them unless given.
    if (std::filesystem::exists(std::filesystem::path(a.model_dir) / kSlideManifestFile)) {
      const SlideManifest m = SlideManifest::load(a.model_dir);
      if (a.backend == "cublaslt") opt.backend = GemmBackend::kCusparseLt;
      if (a.sparsity.empty()) opt.sparsity = m.sparsity;
      if (a.dtype == "int8") opt.compute = m.precision;
    }
  } else {
    source = ModelSource::random(a.random, a.seed);
    source.layers_override = a.layers;
  }
  SS_REQUIRE(opt.backend != GemmBackend::kCusparseLt || opt.sparsity,
             "generate: --backend cusparselt needs --sparsity (e.g. 2:8)");
  const int64_t prompt =
      a.prompt_tokens.empty() ? a.prompt_len : static_cast<int64_t>(a.prompt_tokens.size());
  opt.max_batch = a.batch;
  opt.max_tokens_per_step = prompt * a.batch;
  opt.kv_cache_tokens = (prompt + a.max_new_tokens + 16) * a.batch;

  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> engine = Engine::load(source, opt);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "model: " << engine->describe() << " (loaded in " << std::fixed
            << std::setprecision(1) << load_s << " s)\n";

  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < a.batch; ++b) {
    if (!a.prompt_tokens.empty()) {
      prompts.push_back(a.prompt_tokens);
      continue;
    }
    std::vector<int32_t> p(static_cast<size_t>(prompt));
    uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(b + 1) + a.seed;
    for (auto& t : p) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      t = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(engine->config().vocab));
    }
    prompts.push_back(std::move(p));
  }
  std::vector<int64_t> reserve(static_cast<size_t>(a.batch), prompt + a.max_new_tokens);
  std::vector<std::vector<int32_t>> out;
  std::vector<double> prefill_ms, decode_ms;  // per repetition (the first one warms up)
  for (int rep = 0; rep < std::max(a.repeats, 1); ++rep) {
    engine->start_batch(reserve);
    out.assign(static_cast<size_t>(a.batch), {});
    const StepResult first = engine->prefill(prompts);
    prefill_ms.push_back(first.gpu_ms);
    if (a.profile && rep + 1 == std::max(a.repeats, 1)) print_profile("prefill", first);
    for (int64_t b = 0; b < a.batch; ++b) out[b].push_back(first.tokens[b]);
    double decode = 0;
    for (int64_t step = 1; step < a.max_new_tokens; ++step) {
      const StepResult r = engine->decode();
      decode += r.gpu_ms;
      if (a.profile && rep + 1 == std::max(a.repeats, 1) && step == a.max_new_tokens - 1)
        print_profile("decode (eager, last step)", r);
      for (int64_t b = 0; b < a.batch; ++b) out[b].push_back(r.tokens[b]);
    }
    decode_ms.push_back(decode);
    engine->end_batch();
  }
  // With repetitions, the median of all but the first (warm-up) one.
  auto median_ms = [](std::vector<double> v) {
    if (v.size() > 1) v.erase(v.begin());
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double first_ms = median_ms(prefill_ms);
  const double decode_total_ms = median_ms(decode_ms);
  if (!a.quiet)
    for (int64_t b = 0; b < a.batch; ++b) {
      std::cout << "sequence " << b << ":";
      for (int32_t t : out[b]) std::cout << " " << t;
      std::cout << "\n";
    }
  const EngineMemory mem = engine->memory();
  std::cout << std::setprecision(1) << "prefill: " << prompt * a.batch << " tokens in "
            << std::setprecision(3) << first_ms << " ms, " << std::setprecision(0)
            << prompt * a.batch / (first_ms / 1e3) << " tok/s"
            << (a.repeats > 1 ? " (median of repetitions 2.." + std::to_string(a.repeats) + ")"
                              : "")
            << "\n";
  if (a.max_new_tokens > 1)
    std::cout << "decode: " << a.max_new_tokens - 1 << " steps x " << a.batch << " sequences, "
              << std::setprecision(3) << decode_total_ms / (a.max_new_tokens - 1) << " ms/step, "
              << std::setprecision(0) << (a.max_new_tokens - 1) * a.batch / (decode_total_ms / 1e3)
              << " tok/s" << (opt.cuda_graphs ? " (CUDA graphs)" : " (eager)") << "\n";
  std::cout << std::setprecision(2) << "memory: weights " << gib(mem.weight_bytes)
            << " GiB, scratch " << gib(mem.scratch_bytes) << " GiB, KV cache "
            << gib(mem.kv_cache_bytes) << " GiB (" << mem.kv_cache_tokens << " tokens), free "
            << gib(mem.device_free_bytes) << " of " << gib(mem.device_total_bytes) << " GiB\n";
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* g = app.add_subcommand(
      "generate", "Greedy generation through the engine: token ids, prefill/decode tok/s, memory");
  g->add_option("--model", a->model_dir, "HF or SlideSparse checkpoint folder");
  g->add_option("--random", a->random,
                "Random full-size weights of a model name (models/<NAME>.json) or config.json");
  g->add_option("--backend", a->backend,
                "cublaslt, cublaslt-fa (FP8 fast accumulation), cusparselt");
  g->add_option("--sparsity", a->sparsity,
                "Z:L (cusparselt: the pattern; cublaslt: prune to it, the dense baseline)");
  g->add_option("--dtype", a->dtype, "int8, fp8 or bf16");
  g->add_option("--epilogue", a->epilogue,
                "fused (library epilogue where it can, default) or kernel")
      ->check(CLI::IsMember({"kernel", "fused"}));
  g->add_option("--prompt-tokens", a->prompt_tokens, "One prompt as token ids, e.g. 1,2,3")
      ->delimiter(',');
  g->add_option("--prompt-len", a->prompt_len, "Random prompts of this length (with --batch)");
  g->add_option("--batch", a->batch, "Sequences (with --prompt-len)");
  g->add_option("--max-new-tokens", a->max_new_tokens, "Tokens to generate per sequence")
      ->required();
  g->add_option("--layers", a->layers, "Decoder layers of a --random model (default: all)");
  g->add_option("--seed", a->seed, "Seed of random weights and prompts");
  g->add_option("--repeats", a->repeats,
                "Run the batch this many times; timings are the median of all but the first");
  g->add_flag("--no-graphs", a->no_graphs, "Decode eagerly (no CUDA graphs)");
  g->add_flag("--no-tuning", a->no_tuning, "Library defaults, ignore tuning tables");
  g->add_flag("--profile", a->profile,
              "Time every op of the last prefill and decode step (decode then runs eagerly)");
  g->add_flag("--quiet", a->quiet, "Timings only, no token ids");
  g->callback([a] { run_generate(*a); });
}

}  // namespace slidesparse::cli
