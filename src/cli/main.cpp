// `slidesparse`: the command-line front end. Subcommands live in src/cli/<name>_command.cpp.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "slidesparse/build_info.h"
#include "slidesparse/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "SlideSparse: Z:L structured sparsity (2:6, 2:8, 2:10, ...) on 2:4 Sparse Tensor Cores"};
  app.set_version_flag("--version", "slidesparse " + slidesparse::build_info().id());
  app.require_subcommand(1);
  slidesparse::cli::add_info_command(app);
  slidesparse::cli::add_selftest_command(app);
  slidesparse::cli::add_convert_command(app);
  slidesparse::cli::add_verify_command(app);
  slidesparse::cli::add_make_model_command(app);
  slidesparse::cli::add_bench_command(app);
  slidesparse::cli::add_tune_command(app);
  slidesparse::cli::add_bench_quant_command(app);
  slidesparse::cli::add_bench_throughput_command(app);
  slidesparse::cli::add_report_command(app);
  slidesparse::cli::add_generate_command(app);
  slidesparse::cli::add_prepare_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const slidesparse::Error& e) {
    std::cerr << "slidesparse: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "slidesparse: unexpected error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
