// `slidesparse convert --in DIR --out DIR --sparsity 2:8 --dtype int8|fp8|bf16`: an HF Llama /
// Qwen2 checkpoint to a SlideSparse checkpoint (src/convert/converter.h). Prints one line per
// linear weight (unless --quiet) and a summary with throughput and peak resident memory. Ctrl-C
// or SIGTERM stops it between tensors with the temporary output removed (exit 130 / 143).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>

#include "cli/arguments.h"
#include "cli/commands.h"
#include "convert/converter.h"
#include "convert/output_dir.h"
#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse::cli {
namespace {

// Ctrl-C / SIGTERM during a conversion: the handler only sets the flag the converter checks between
// tensors; it then removes its temporary output and the command exits 128 + signal. The handler
// resets itself (SA_RESETHAND), so a second Ctrl-C ends the process at once.
std::atomic<bool> g_cancel{false};
volatile std::sig_atomic_t g_signal = 0;
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_interrupt(int signal_number) {
  g_signal = signal_number;
  g_cancel.store(true);
}

// Installs on_interrupt for SIGINT and SIGTERM while it lives; restores the previous handlers.
class InterruptScope {
 public:
  InterruptScope() {
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~InterruptScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

struct ConvertArgs {
  std::string in, out, sparsity = "2:8", dtype = "int8";
  bool assume_pruned = false, overwrite = false, quiet = false;
  int threads = 0;
};

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void run_convert(const ConvertArgs& args) {
  ConvertOptions opt;
  opt.in = args.in;
  opt.out = args.out;
  opt.sparsity = Sparsity::parse(args.sparsity);
  opt.precision = parse_dtype_option("convert", "--dtype", args.dtype,
                                     {DType::kI8, DType::kFP8E4M3, DType::kBF16});
  opt.assume_pruned = args.assume_pruned;
  opt.overwrite = args.overwrite;
  opt.threads = args.threads;
  if (!args.quiet) opt.progress = [](std::string_view line) { std::cout << line << std::endl; };
  opt.cancel = &g_cancel;
  ConvertReport r;
  {
    InterruptScope interrupts;
    try {
      r = convert_checkpoint(opt);
    } catch (const InterruptedError& e) {
      std::cerr << "slidesparse: " << e.what() << "\n";
      throw CLI::RuntimeError(128 + (g_signal != 0 ? static_cast<int>(g_signal) : SIGINT));
    }
  }
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::cout << std::fixed << std::setprecision(2) << "converted " << r.linear_weights
            << " linear weights (" << r.linear_params / 1e6 << " M params) of " << r.tensors
            << " tensors: " << r.bytes_in / gib << " GiB in, " << r.bytes_out / gib << " GiB out, "
            << r.seconds << " s (" << r.bytes_in / gib / r.seconds << " GiB/s source, "
            << r.total_params / 1e6 / r.seconds << " M params/s; source checksum "
            << r.checksum_seconds << " s on a side thread), peak RSS " << peak_rss_mib() << " MiB\n"
            << "source checksum fnv1a64 " << r.source_checksum << " -> " << args.out << "\n";
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert an HF Llama/Qwen2 checkpoint (bf16/fp16/fp32 or compressed-tensors W8A8) to "
      "SlideSparse: prune to Z:L, quantise per channel, slide to 2:4");
  cmd->add_option("--in", args->in, "Source model directory (config.json + *.safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", args->out, "Output directory (must not exist unless --overwrite)")
      ->required();
  cmd->add_option("--sparsity", args->sparsity, "Z:L pattern: 2:4, 2:6, 2:8, 2:10, ...")
      ->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "Output precision: int8, fp8 or bf16")
      ->capture_default_str();
  cmd->add_flag("--assume-pruned", args->assume_pruned,
                "Do not prune: check the weights are already Z:L and refuse the first that is not");
  cmd->add_flag("--overwrite", args->overwrite, "Replace --out once the new output is complete");
  cmd->add_option("--threads", args->threads, "Worker threads (0: all cores)")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", args->quiet, "Only print the summary");
  cmd->callback([args] { run_convert(*args); });
}

}  // namespace slidesparse::cli
