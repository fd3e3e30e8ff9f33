// The one way this project replaces a file: write a temporary file in the target's folder, fsync
// it, rename it over the target, fsync the folder. A reader (or a rerun after a crash) sees the
// old file or the whole new one, never a part; a failed write leaves the old file untouched and no
// temporary behind. Every error names the target path, not the temporary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "slidesparse/error.h"

namespace slidesparse {

// A file could not be written (permission, read-only file system, disk full, a folder in the
// way). what() reads "cannot write <target>: <step>: <reason>"; reason() is the last part.
class FileWriteError : public Error {
 public:
  FileWriteError(std::filesystem::path target, const std::string& reason)
      : Error("cannot write " + target.string() + ": " + reason),
        target_(std::move(target)),
        reason_(reason) {}
  const std::filesystem::path& target() const { return target_; }
  const std::string& reason() const { return reason_; }

 private:
  std::filesystem::path target_;
  std::string reason_;
};

// A temporary file next to `target` that becomes `target` on commit(). Destroyed without
// commit() (an error on the way), it removes the temporary and leaves `target` as it was. For
// writers that stream (SafetensorsWriter); whole buffers go through write_file_atomic.
class AtomicFile {
 public:
  // Creates missing parent folders and the temporary "<target>.tmp.<pid>.<n>".
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Writes all of `data` at byte `offset` of the temporary (retries short writes and EINTR).
  void write_at(std::span<const std::byte> data, uint64_t offset);
  // Appends after the bytes written so far by append().
  void append(std::string_view text);
  // fsync, close, rename over the target, fsync of the folder. Throws FileWriteError.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail(const char* step, int err);
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  uint64_t append_at_ = 0;
  bool committed_ = false;
};

// Makes a rename inside `folder` durable (fsync of the folder). File systems that cannot fsync a
// folder (EINVAL, EROFS) are taken as done; any other failure throws FileWriteError naming
// `target`, the file or folder whose rename it was.
void fsync_folder(const std::filesystem::path& folder, const std::filesystem::path& target);

// Writes `bytes` to `path` through an AtomicFile (missing parent folders are created). Throws
// FileWriteError on failure.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace slidesparse
