// Temporary output folder + rename, and output errors that name --out (see output_dir.h).
#include "convert/output_dir.h"

#include <unistd.h>

#include <system_error>

#include "io/atomic_file.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

// "<out>.tmp-<pid>" folders of runs whose process no longer exists.
void remove_stale_temporaries(const fs::path& out,
                              const std::function<void(const std::string&)>& say) {
  std::error_code ec;
  const std::string prefix = out.filename().string() + ".tmp-";
  for (const auto& entry : fs::directory_iterator(out.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (fs::exists(fs::path("/proc") / pid, ec)) continue;  // still running (or pid reused)
    fs::remove_all(entry.path(), ec);
    if (!ec && say) say("removed " + entry.path().string() + " left by an interrupted run");
  }
}

// `text` with every occurrence of `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

StagedOutputDir::StagedOutputDir(std::string command, fs::path out,
                                 const std::function<void(const std::string&)>& say)
    : command_(std::move(command)), out_(fs::absolute(out)) {
  std::error_code ec;
  if (!out_.parent_path().empty()) {
    fs::create_directories(out_.parent_path(), ec);
    if (ec)
      throw Error(
          output_error("cannot create " + out_.parent_path().string() + ": " + ec.message()));
  }
  remove_stale_temporaries(out_, say);
  tmp_ = fs::path(out_.string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp_, ec);
  fs::create_directory(tmp_, ec);
  if (ec)
    throw Error(output_error("cannot create a folder in " + out_.parent_path().string() + ": " +
                             ec.message()));
}

StagedOutputDir::~StagedOutputDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void StagedOutputDir::commit() {
  std::error_code ec;
  if (fs::exists(out_, ec)) {
    const fs::path old = fs::path(out_.string() + ".old-" + std::to_string(::getpid()));
    fs::remove_all(old, ec);
    fs::rename(out_, old, ec);
    if (ec) throw Error(output_error("cannot move the old output aside: " + ec.message()));
    fs::rename(tmp_, out_, ec);
    if (ec) {
      const std::string why = ec.message();
      fs::rename(old, out_, ec);  // put the old output back
      throw Error(output_error("cannot move the new output into place: " + why));
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp_, out_, ec);
    if (ec) throw Error(output_error("cannot move the new output into place: " + ec.message()));
  }
  committed_ = true;
  try {
    fsync_folder(out_.parent_path(), out_);
  } catch (const FileWriteError& e) {
    throw Error(output_error(e.reason()));
  }
}

std::string StagedOutputDir::output_error(const std::string& reason) const {
  return command_ + ": cannot write --out " + out_.string() + ": " +
         replaced(reason, tmp_.string(), out_.string());
}

void StagedOutputDir::rethrow_as_output_error() const {
  try {
    throw;
  } catch (const FileWriteError& e) {
    throw Error(output_error(replaced(e.what(), tmp_.string(), out_.string())));
  } catch (const fs::filesystem_error& e) {
    std::string where;
    if (!e.path1().empty()) where = e.path1().string();
    if (!e.path2().empty()) where += (where.empty() ? "" : " -> ") + e.path2().string();
    throw Error(output_error((where.empty() ? "" : where + ": ") + e.code().message()));
  }
}

void throw_if_cancelled(const std::atomic<bool>* cancel, const std::string& command) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed))
    throw InterruptedError(command +
                           ": interrupted; the partial output was removed and --out is untouched");
}

}  // namespace slidesparse
