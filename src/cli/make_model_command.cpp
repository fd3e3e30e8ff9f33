// `slidesparse make-model --config FILE|NAME --layers N --out DIR`: a random HF-format checkpoint
// of the Llama / Qwen2 family (src/convert/make_model.h) for tests and demos.
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/arguments.h"
#include "cli/commands.h"
#include "convert/make_model.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse::cli {
namespace {

struct MakeModelArgs {
  std::string config, out, dtype = "bf16", weight_quant, prune;
  int64_t layers = 0;
  uint64_t seed = 0;
  int shards = 1;
  bool overwrite = false;
};

void run_make_model(const MakeModelArgs& args) {
  MakeModelOptions opt;
  opt.config = args.config;
  opt.layers = args.layers;
  opt.out = args.out;
  opt.dtype = parse_dtype_option("make-model", "--dtype", args.dtype,
                                 {DType::kBF16, DType::kF16, DType::kF32});
  if (!args.weight_quant.empty())
    opt.weight_quant = parse_dtype_option("make-model", "--weight-quant", args.weight_quant,
                                          {DType::kI8, DType::kFP8E4M3});
  if (!args.prune.empty()) opt.prune = Sparsity::parse(args.prune);
  opt.seed = args.seed;
  opt.shards = args.shards;
  opt.overwrite = args.overwrite;
  const MakeModelReport r = make_model(opt);
  std::cout << std::fixed << std::setprecision(2) << "wrote " << args.out << ": " << r.tensors
            << " tensors, " << r.params / 1e6 << " M params, "
            << r.bytes / (1024.0 * 1024.0 * 1024.0) << " GiB in " << r.shards << " file(s), "
            << r.seconds << " s\n";
}

}  // namespace

void add_make_model_command(CLI::App& app) {
  auto args = std::make_shared<MakeModelArgs>();
  CLI::App* cmd = app.add_subcommand(
      "make-model", "Write a random HF-format Llama/Qwen2 checkpoint (config.json + safetensors)");
  cmd->add_option("--config", args->config,
                  "config.json, a model directory, or a known name (Llama3.2-1B, Qwen2.5-7B, ...)")
      ->required();
  cmd->add_option("--layers", args->layers, "num_hidden_layers (default: the config's)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--out", args->out, "Output directory")->required();
  cmd->add_option("--dtype", args->dtype, "bf16, fp16 or fp32")->capture_default_str();
  cmd->add_option("--weight-quant", args->weight_quant,
                  "Store linear weights as compressed-tensors W8A8: int8 or fp8 (+ weight_scale)");
  cmd->add_option("--prune", args->prune, "Prune linear weights to this Z:L pattern (e.g. 2:8)");
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("--shards", args->shards, "Number of safetensors shards")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  cmd->add_flag("--overwrite", args->overwrite, "Replace --out if it exists");
  cmd->callback([args] { run_make_model(*args); });
}

}  // namespace slidesparse::cli
