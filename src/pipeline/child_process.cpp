// Process control for the pipeline's children (see child_process.h). Linux: fork + execve,
// setpgid, PR_SET_PDEATHSIG, poll on one pipe, waitid(WNOWAIT) so that the group is killed while
// its leader's pid is still reserved.
#include "pipeline/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "slidesparse/error.h"

extern char** environ;

namespace slidesparse::pipeline {

std::string ExitStatus::describe() const {
  if (exit_code) return "exit code " + std::to_string(*exit_code);
  if (signal) {
    const char* name = nullptr;
    switch (*signal) {
      case SIGSEGV:
        name = "SIGSEGV";
        break;
      case SIGABRT:
        name = "SIGABRT";
        break;
      case SIGBUS:
        name = "SIGBUS";
        break;
      case SIGFPE:
        name = "SIGFPE";
        break;
      case SIGILL:
        name = "SIGILL";
        break;
      case SIGKILL:
        name = "SIGKILL";
        break;
      case SIGTERM:
        name = "SIGTERM";
        break;
      case SIGINT:
        name = "SIGINT";
        break;
      case SIGPIPE:
        name = "SIGPIPE";
        break;
      default:
        break;
    }
    return "signal " + std::to_string(*signal) + (name ? std::string(" (") + name + ")" : "");
  }
  return "unknown end";
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& env) {
  SS_REQUIRE(!argv.empty(), "ChildProcess: no program given");
  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    bool replaced = false;
    for (const auto& [key, value] : env)
      if (entry.rfind(key + "=", 0) == 0) replaced = true;
    if (!replaced) env_text.push_back(entry);
  }
  for (const auto& [key, value] : env) env_text.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (std::string& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (std::string& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  const std::string exec_failed = "slidesparse prepare-bench: cannot execute " + argv[0] + ": ";

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(std::string("prepare-bench: pipe() failed: ") + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(std::string("prepare-bench: fork() failed: ") + std::strerror(err));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the pipeline died before prctl took effect
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGHUP}) ::signal(sig, SIG_DFL);
    ::execve(argp[0], argp.data(), envp.data());
    const char* reason = std::strerror(errno);
    [[maybe_unused]] auto w1 = ::write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    [[maybe_unused]] auto w2 = ::write(STDERR_FILENO, reason, std::strlen(reason));
    [[maybe_unused]] auto w3 = ::write(STDERR_FILENO, "\n", 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so a kill before the child ran setpgid still hits the group
  ::close(fds[1]);
  pid_ = pid;
  fd_ = fds[0];
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
  if (!status_ && pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  close_pipe();
}

void ChildProcess::close_pipe() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void ChildProcess::kill_group() {
  if (pid_ > 0 && !status_) ::kill(-pid_, SIGKILL);
}

bool ChildProcess::check_exited() {
  if (status_) return true;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return false;
  if (info.si_pid != pid_) return false;
  // The leader has ended but is not reaped yet, so its pid (the group id) cannot be reused:
  // kill what it left behind in the group, then reap it.
  ::kill(-pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  ExitStatus s;
  if (WIFEXITED(st)) s.exit_code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) s.signal = WTERMSIG(st);
  status_ = s;
  return true;
}

void ChildProcess::read_available(std::vector<std::string>& lines, bool flush_partial) {
  if (fd_ >= 0) {
    char buffer[8192];
    for (;;) {
      const ssize_t got = ::read(fd_, buffer, sizeof(buffer));
      if (got > 0) {
        partial_.append(buffer, static_cast<size_t>(got));
        continue;
      }
      if (got == 0) eof_ = true;
      if (got < 0 && errno == EINTR) continue;
      break;
    }
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = partial_.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(std::move(line));
    }
    partial_.erase(0, start);
  }
  if (flush_partial && !partial_.empty()) {
    lines.push_back(partial_);
    partial_.clear();
  }
}

bool ChildProcess::poll(int timeout_ms, std::vector<std::string>& lines) {
  if (fd_ >= 0 && !eof_) {
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, timeout_ms);
  } else if (!status_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  }
  read_available(lines, false);
  if (!check_exited()) return true;
  // Exited: drain what is still in the pipe (its writers were killed with the group); give up
  // after a second on a writer that left the group.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (fd_ >= 0 && !eof_ && std::chrono::steady_clock::now() < until) {
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, 50);
    read_available(lines, false);
  }
  read_available(lines, true);
  close_pipe();
  return false;
}

ExitStatus ChildProcess::wait(std::vector<std::string>& lines) {
  while (poll(100, lines)) {
  }
  return *status_;
}

}  // namespace slidesparse::pipeline
