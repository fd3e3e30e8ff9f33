// `slidesparse bench`: benchmark subcommands. `bench kernel` is the kernel-level benchmark
// (src/bench/kernel_bench.h); others attach themselves under the same `bench` (find it with
// app.get_subcommand("bench")). Arguments are checked first; then, without a GPU, each ends with
// an error and exit status 1 (as `tune`).
#include <iostream>
#include <string>
#include <vector>

#include "bench/kernel_bench.h"
#include "cli/arguments.h"
#include "cli/commands.h"
#include "slidesparse/error.h"

namespace slidesparse::cli {

CLI::App& bench_group(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App* s) { return s->get_name() == "bench"; }))
    return *sub;
  CLI::App* bench = app.add_subcommand(
      "bench", "Benchmarks: kernel (GEMM + quant/dequant), quant, prefill and decode throughput");
  bench->require_subcommand(1);
  return *bench;
}

void add_bench_command(CLI::App& app) {
  CLI::App* bench = &bench_group(app);

  struct KernelArgs {
    std::string model;
    std::vector<std::string> dtypes{"int8", "fp8"};
    std::vector<std::string> sparsities{"2:4", "2:6", "2:8", "2:10"};
    std::vector<int64_t> ms{64, 512, 2048, 8192, 16384, 32768};
    std::string epilogue = "kernel";
    int repeats = 50;
    int warmup = 10;
    std::string out;
    bool no_tuning = false;
  };
  auto args = std::make_shared<KernelArgs>();
  CLI::App* kernel = bench->add_subcommand(
      "kernel",
      "Per linear of a model and per M: quant(_slide), GEMM, dequant and whole-layer times, dense "
      "(cuBLASLt) vs SlideSparse (cuSPARSELt) per pattern, speed-ups and sums; JSON + CSV");
  kernel->add_option("--model", args->model, "Model name (models/<NAME>.json) or config.json path")
      ->required();
  kernel->add_option("--dtype", args->dtypes, "int8, fp8, bf16 (comma-separated)")->delimiter(',');
  kernel->add_option("--sparsity", args->sparsities, "Z:L patterns, e.g. 2:4,2:6,2:8,2:10")
      ->delimiter(',');
  kernel->add_option("--M", args->ms, "Token counts, e.g. 64,512,2048")->delimiter(',');
  kernel
      ->add_option("--epilogue", args->epilogue,
                   "kernel (dequant kernel) or fused (library "
                   "epilogue where it can)")
      ->check(CLI::IsMember({"kernel", "fused"}));
  kernel->add_option("--repeats", args->repeats, "Timed runs per closure (at most)");
  kernel->add_option("--warmup", args->warmup, "Untimed runs first");
  kernel->add_option("--out", args->out,
                     "Output folder (default results/kernel/<GPU>_cc<XY>_<DTYPE>_<toolchain>/"
                     "<backend>/)");
  kernel->add_flag("--no-tuning", args->no_tuning, "Library defaults, ignore tuning tables");
  kernel->callback([args] {
    KernelBenchOptions options;
    options.model = args->model;
    options.dtypes = parse_dtype_options("bench kernel", "--dtype", args->dtypes,
                                         {DType::kI8, DType::kFP8E4M3, DType::kBF16});
    options.sparsities = parse_sparsities(args->sparsities);
    options.ms = args->ms;
    options.epilogue = parse_epilogue(args->epilogue);
    options.repeats = args->repeats;
    options.warmup = args->warmup;
    options.use_tuning = !args->no_tuning;
    if (!args->out.empty()) {
      require_writable_folder("bench kernel", "--out", args->out);
      options.out_dir = args->out;
    }
    run_kernel_bench(options, std::cout);
  });
}

}  // namespace slidesparse::cli
