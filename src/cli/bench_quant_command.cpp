// `slidesparse bench quant`: bandwidth of quant / quant_slide / slide / dequant against a copy of
// the same bytes (src/bench/quant_bench.h). Attaches under the `bench` subcommand. Arguments are
// checked first; then, without a GPU, it ends with an error and exit status 1 (as `tune`).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bench/quant_bench.h"
#include "cli/arguments.h"
#include "cli/commands.h"
#include "slidesparse/error.h"

namespace slidesparse::cli {
namespace {

// "256:1" -> {256, 1}; "0:0" is the kernels' default.
KernelLaunchConfig parse_config(const std::string& text) {
  const size_t colon = text.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no ':'");
    size_t used_a = 0, used_b = 0;
    const std::string a = text.substr(0, colon), b = text.substr(colon + 1);
    KernelLaunchConfig c{std::stoi(a, &used_a), std::stoi(b, &used_b)};
    if (used_a != a.size() || used_b != b.size()) throw std::invalid_argument("trailing text");
    return c;
  } catch (const std::exception&) {
    throw Error(
        "bench quant: --config takes BLOCK_THREADS:ROWS_PER_BLOCK pairs such as 256:1 or "
        "0:0 (default); got '" +
        text + "'");
  }
}

}  // namespace

void add_bench_quant_command(CLI::App& app) {
  CLI::App* bench = &bench_group(app);

  struct Args {
    std::vector<int64_t> ms{4096, 16384};
    std::vector<int64_t> ks{2048, 3584, 8192, 18944};
    std::vector<std::string> dtypes{"int8", "fp8"};
    std::vector<std::string> sparsities{"2:4", "2:6", "2:8", "2:10"};
    std::vector<std::string> configs{"0:0"};
    int repeats = 50;
    int warmup = 10;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* quant = bench->add_subcommand(
      "quant",
      "Bandwidth of quant, quant_slide (per pattern), slide (bf16) and dequant (int32 / fp32 "
      "accumulator, N = K) vs a device-to-device copy of the same bytes; JSON + CSV with --out");
  quant->add_option("--M", args->ms, "Token counts (comma-separated)")->delimiter(',');
  quant->add_option("--K", args->ks, "Hidden sizes K (dequant uses N = K)")->delimiter(',');
  quant->add_option("--dtype", args->dtypes, "Quantised dtypes: int8, fp8")->delimiter(',');
  quant->add_option("--sparsity", args->sparsities, "Z:L patterns for quant_slide and slide")
      ->delimiter(',');
  quant
      ->add_option("--config", args->configs,
                   "Launch configs BLOCK_THREADS:ROWS_PER_BLOCK to time each kernel at (0:0 = "
                   "default)")
      ->delimiter(',');
  quant->add_option("--repeats", args->repeats, "Timed samples per kernel (median reported)")
      ->check(CLI::Range(1, 100000));
  quant->add_option("--warmup", args->warmup, "Untimed calls first")->check(CLI::Range(0, 100000));
  quant->add_option("--out", args->out, "Folder for quant_bench.json and quant_bench.csv");
  quant->callback([args] {
    QuantBenchOptions options;
    options.ms = args->ms;
    options.ks = args->ks;
    options.dtypes =
        parse_dtype_options("bench quant", "--dtype", args->dtypes, {DType::kI8, DType::kFP8E4M3});
    options.sparsities = parse_sparsities(args->sparsities);
    options.configs.clear();
    for (const auto& c : args->configs) options.configs.push_back(parse_config(c));
    options.repeats = args->repeats;
    options.warmup = args->warmup;
    if (!args->out.empty()) {
      require_writable_folder("bench quant", "--out", args->out);
      options.out_dir = args->out;
    }
    run_quant_bench(options, std::cout);
    if (options.out_dir)
      std::cout << "wrote " << (*options.out_dir / "quant_bench.json").string()
                << " and quant_bench.csv\n";
  });
}

}  // namespace slidesparse::cli
