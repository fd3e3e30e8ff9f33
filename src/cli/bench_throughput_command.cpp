// `slidesparse bench prefill` and `slidesparse bench decode` (src/bench/throughput_bench.h):
// tokens/s, requests/s, elapsed and energy per M of one model / dtype / backend, one case JSON per
// M. Attaches under the `bench` subcommand. Arguments are checked before any GPU is looked for
// (exit 105 with the option named); without a GPU it prints "bench <phase>: skipped: no GPU" and
// exits 1, as `slidesparse tune` does. Otherwise: 0 every case ok or skipped, 2 some failed (each
// recorded), 3 the CUDA context died (the failed case recorded, the remaining Ms not run).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bench/energy_meter.h"
#include "bench/throughput_bench.h"
#include "cli/commands.h"
#include "cuda/device_info.h"
#include "slidesparse/error.h"

namespace slidesparse::cli {
namespace {

// `slidesparse tune` without a GPU ends with a NotSupportedError, which main() turns into 1.
constexpr int kNoGpuExitCode = 1;

void add_phase(CLI::App* bench, ThroughputPhase phase) {
  const bool prefill = phase == ThroughputPhase::kPrefill;
  const std::string name(phase_name(phase));
  CLI::App* cmd = bench->add_subcommand(
      name, prefill ? "Prefill throughput: at M tokens per step, ceil(M/1024) sequences of "
                      "min(M, 1024) random tokens, one output token; tokens/s, J/token; a JSON "
                      "per M"
                    : "Decode throughput: batch M, prompt 16, 256 output tokens (elapsed includes "
                      "the prefill); tokens/s, J/token; a JSON per M");
  auto args = std::make_shared<ThroughputArgs>();
  auto warmup = std::make_shared<int>(0);
  auto repeats = std::make_shared<int>(0);
  auto min_time = std::make_shared<double>(0);
  auto task = std::make_shared<int>(0);
  cmd->add_option("--model", args->model, "Model name (models/<NAME>.json) or config.json path")
      ->required();
  cmd->add_option("--dtype", args->dtype, "int8, fp8 or bf16")->required();
  cmd->add_option("--backend", args->backend,
                  "cublaslt (dense), cublaslt-fa (dense, FP8 fast accumulation) or cusparselt")
      ->required();
  cmd->add_option("--sparsity", args->sparsity, "Z:L pattern of cusparselt, e.g. 2:8");
  cmd->add_option("--M", args->ms,
                  prefill ? "Tokens per step, comma-separated (e.g. 512,1024,...,65536)"
                          : "Batch sizes, comma-separated (e.g. 64,128,256,512)")
      ->delimiter(',')
      ->required();
  CLI::Option* warmup_opt = cmd->add_option(
      "--warmup", *warmup,
      prefill ? "Untimed repetitions first (default 2)"
              : "Untimed repetitions first, each prefill + 16 decode steps (default 1)");
  CLI::Option* repeats_opt = cmd->add_option("--repeats", *repeats,
                                             std::string("Timed repetitions, at least (default ") +
                                                 (prefill ? "5" : "3") + "); medians reported");
  CLI::Option* min_time_opt = cmd->add_option(
      "--min-time", *min_time,
      "Keep timing repetitions until they span this many seconds, for the energy window "
      "(default 0.5; 0: exactly --repeats)");
  cmd->add_option("--epilogue", args->epilogue,
                  "fused (library epilogue where it can, default) or kernel (dequant kernel)")
      ->capture_default_str();
  cmd->add_flag("--no-tuning", args->no_tuning, "Library defaults, ignore tuning tables");
  cmd->add_option("--stage", args->stage,
                  "Stage recorded and foldered under: " + name + " (default) or simple");
  CLI::Option* task_opt = cmd->add_option(
      "--task", *task, "Task number recorded (default 6 prefill, 7 decode, 5 simple)");
  cmd->add_option("--json-dir", args->json_dir,
                  "Folder of the case JSONs (default results/<stage>/<GPU>_cc<XY>_<DTYPE>_"
                  "<toolchain>/<backend>[/<Z_L>]/json)");
  cmd->add_option("--case-marker", args->case_marker,
                  "File that names the running case's JSON (one line) while it runs; removed "
                  "when the invocation ends");

  cmd->callback([=] {
    ThroughputArgs given = *args;
    if (warmup_opt->count() > 0) given.warmup = *warmup;
    if (repeats_opt->count() > 0) given.repeats = *repeats;
    if (min_time_opt->count() > 0) given.min_time_s = *min_time;
    if (task_opt->count() > 0) given.task = *task;
    ThroughputOptions options;
    try {
      options = validate_throughput_args(phase, given);
    } catch (const Error& e) {
      throw CLI::ValidationError(e.what());
    }
    if (!gpu_available()) {
      std::cout << "bench " << name << ": skipped: no GPU\n";
      throw CLI::RuntimeError(kNoGpuExitCode);
    }
    NvmlEnergyMeter meter;
    ThroughputEnvironment env;
    env.host = query_host_record(meter.driver_version());
    env.energy = meter.available() ? &meter : nullptr;
    env.energy_absent_note = meter.note();
    env.load_model = make_engine_model;
    env.context_fault = cuda_context_fault;
    const ThroughputRunResult result = run_throughput_bench(options, env, std::cout);
    if (result.exit_code != kExitAllOkOrSkipped) throw CLI::RuntimeError(result.exit_code);
  });
}

}  // namespace

void add_bench_throughput_command(CLI::App& app) {
  CLI::App* bench = &bench_group(app);
  add_phase(bench, ThroughputPhase::kPrefill);
  add_phase(bench, ThroughputPhase::kDecode);
}

}  // namespace slidesparse::cli
