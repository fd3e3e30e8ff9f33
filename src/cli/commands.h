// Each subcommand of `slidesparse` lives in its own file and registers itself here. A command's
// callback throws CLI::RuntimeError(code) to set a non-zero exit status.
#pragma once

#include <CLI/CLI.hpp>

namespace slidesparse::cli {

void add_info_command(CLI::App& app);
void add_selftest_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_make_model_command(CLI::App& app);
// The `bench` group every benchmark subcommand attaches to, created by the first caller.
CLI::App& bench_group(CLI::App& app);
void add_bench_command(CLI::App& app);  // `bench kernel`
void add_tune_command(CLI::App& app);
void add_bench_quant_command(CLI::App& app);       // `bench quant`
void add_bench_throughput_command(CLI::App& app);  // `bench prefill` and `bench decode`
void add_report_command(CLI::App& app);
void add_generate_command(CLI::App& app);       // the engine: greedy generation
void add_prepare_bench_command(CLI::App& app);  // tasks 3-7, then the report

}  // namespace slidesparse::cli
