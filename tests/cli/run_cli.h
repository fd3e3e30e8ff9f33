// Runs the built `slidesparse` program (SS_CLI_PATH) with arguments and captures its exit code
// and combined stdout/stderr, for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace slidesparse::test {

struct CliResult {
  int exit_code = -1;
  std::string output;
};

// `env` (e.g. "CUDA_VISIBLE_DEVICES=") is put before the program in the shell command.
inline CliResult run_cli(const std::string& args, const std::string& env = "") {
  const std::string command =
      env + (env.empty() ? "" : " ") + "'" + SS_CLI_PATH + "' " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed for: " + command);
  CliResult result;
  std::array<char, 4096> buffer{};
  size_t got = 0;
  while ((got = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), got);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace slidesparse::test
