// The output folder of `convert` and `make-model`: built as "<out>.tmp-<pid>" beside --out and
// renamed into place by commit(), so --out holds the old output or the whole new one. Not
// committed (an error, an interrupt), the temporary folder is removed and --out is untouched;
// temporaries of killed runs (their process gone) are removed on the next run. A write failure is
// one plain Error naming --out ("<command>: cannot write --out <out>: <reason>"), the temporary
// folder shown as the --out path it stands for.
#pragma once

#include <atomic>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>

#include "slidesparse/error.h"

namespace slidesparse {

// A conversion stopped on request (Ctrl-C / SIGTERM, see ConvertOptions::cancel).
class InterruptedError : public Error {
 public:
  using Error::Error;
};

class StagedOutputDir {
 public:
  // Creates the parent of `out` and the temporary folder (Error naming --out when it cannot).
  // `say` gets one line per stale temporary removed; may be empty.
  StagedOutputDir(std::string command, std::filesystem::path out,
                  const std::function<void(const std::string&)>& say = {});
  ~StagedOutputDir();
  StagedOutputDir(const StagedOutputDir&) = delete;
  StagedOutputDir& operator=(const StagedOutputDir&) = delete;

  // Where to write: the temporary folder.
  const std::filesystem::path& dir() const { return tmp_; }
  const std::filesystem::path& out() const { return out_; }
  // Moves the temporary folder to --out, replacing an existing one only now that the new one is
  // complete.
  void commit();
  // Rethrows the exception in flight: a write failure (FileWriteError, std::filesystem::error)
  // as the plain Error naming --out, anything else as it is. Call inside a catch block.
  [[noreturn]] void rethrow_as_output_error() const;

 private:
  std::string output_error(const std::string& reason) const;
  std::string command_;
  std::filesystem::path out_;  // absolute
  std::filesystem::path tmp_;
  bool committed_ = false;
};

// Throws InterruptedError "<command>: interrupted ..." when `cancel` is set (null: never).
void throw_if_cancelled(const std::atomic<bool>* cancel, const std::string& command);

}  // namespace slidesparse
