// `slidesparse verify DIR [--source DIR]`: checks a converted checkpoint (src/convert/verify.h).
// Exit 0 and "OK" when every check passes; otherwise the error names the first failing tensor and
// the exit status is 1.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "convert/verify.h"

namespace slidesparse::cli {
namespace {

struct VerifyArgs {
  std::string dir, source;
  int64_t rows = 4;
  uint64_t seed = 1;
  bool verbose = false;
};

void run_verify(const VerifyArgs& args) {
  VerifyOptions opt;
  opt.dir = args.dir;
  if (!args.source.empty()) opt.source = args.source;
  opt.sample_rows = args.rows;
  opt.seed = args.seed;
  if (args.verbose) opt.progress = [](std::string_view line) { std::cout << line << std::endl; };
  const VerifyReport r = verify_checkpoint(opt);
  std::cout << "OK " << args.dir << ": " << r.slid_tensors
            << " slid weights are 2:4, un-slide to their Z:L pattern and give W'.lift(x) == W.x";
  if (opt.source) {
    std::cout << "; " << r.compared_with_source << " match the source's pruned and quantised "
              << "weights exactly, " << r.copied_tensors
              << " other tensors are byte-identical, source checksum matches";
  }
  std::cout << "\n";
}

}  // namespace

void add_verify_command(CLI::App& app) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "verify", "Check a SlideSparse checkpoint (2:4, Z:L after un-sliding, W.x == W'.lift(x))");
  cmd->add_option("dir", args->dir, "Converted model directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--source", args->source, "The HF checkpoint it was converted from")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--rows", args->rows, "Rows of random x per tensor")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--seed", args->seed, "Seed of the random x")->capture_default_str();
  cmd->add_flag("--verbose,-v", args->verbose, "One line per checked tensor");
  cmd->callback([args] { run_verify(*args); });
}

}  // namespace slidesparse::cli
