// One child process in its own process group, so that a timeout kills it and everything it
// started. Its stdout and stderr come back, merged in order, through one pipe, as lines. It dies
// with the pipeline (PR_SET_PDEATHSIG), so a killed pipeline leaves no benchmark running.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slidesparse::pipeline {

struct ExitStatus {
  std::optional<int> exit_code;  // exited normally
  std::optional<int> signal;     // killed by a signal
  // "exit code 2", "signal 11 (SIGSEGV)"
  std::string describe() const;
};

class ChildProcess {
 public:
  // Starts argv[0] (a path) with `env` added to this process's environment. Throws Error when
  // the process cannot be created; a program that cannot be executed exits 127 with a message.
  ChildProcess(const std::vector<std::string>& argv,
               const std::vector<std::pair<std::string, std::string>>& env);
  ~ChildProcess();  // kills the group if still running and reaps it; never throws
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits up to `timeout_ms` for output, appends the complete lines read to `lines`, and notes
  // when the child has exited. Returns false once it has exited and its output is drained.
  bool poll(int timeout_ms, std::vector<std::string>& lines);
  // SIGKILL to the whole process group.
  void kill_group();
  // Blocks until the child has exited (call kill_group first to make that quick), drains the
  // output into `lines`, and returns how it ended.
  ExitStatus wait(std::vector<std::string>& lines);

  pid_t pid() const { return pid_; }
  bool exited() const { return status_.has_value(); }

 private:
  bool check_exited();
  void read_available(std::vector<std::string>& lines, bool flush_partial);
  void close_pipe();

  pid_t pid_ = -1;
  int fd_ = -1;
  bool eof_ = false;
  std::string partial_;
  std::optional<ExitStatus> status_;
};

}  // namespace slidesparse::pipeline
