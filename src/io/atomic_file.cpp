// Temporary file + fsync + rename + fsync of the folder (see atomic_file.h).
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

fs::path folder_of(const fs::path& path) {
  return path.has_parent_path() ? path.parent_path() : fs::path(".");
}

// Unique per process and call, so two writers of one target in a process never share a file.
fs::path temp_path_for(const fs::path& target) {
  static std::atomic<uint64_t> counter{0};
  return fs::path(target.string() + ".tmp." + std::to_string(::getpid()) + "." +
                  std::to_string(counter++));
}

}  // namespace

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  SS_REQUIRE(!target_.empty(), "cannot write a file with an empty path");
  std::error_code ec;
  const fs::path folder = folder_of(target_);
  fs::create_directories(folder, ec);
  if (ec)
    throw FileWriteError(target_,
                         "cannot create its folder " + folder.string() + ": " + ec.message());
  temp_ = temp_path_for(target_);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    throw FileWriteError(target_,
                         "cannot create a file in " + folder.string() + ": " + std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFile::fail(const char* step, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::remove(temp_, ec);
  throw FileWriteError(target_, std::string(step) + ": " + std::strerror(err));
}

void AtomicFile::write_at(std::span<const std::byte> data, uint64_t offset) {
  SS_REQUIRE(fd_ >= 0 && !committed_, "cannot write " << target_.string() << ": file is closed");
  const std::byte* p = data.data();
  uint64_t left = data.size();
  while (left > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, uint64_t{1} << 30));
    const ssize_t n = ::pwrite(fd_, p, chunk, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", errno);
    }
    p += n;
    left -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

void AtomicFile::append(std::string_view text) {
  write_at(std::as_bytes(std::span(text.data(), text.size())), append_at_);
  append_at_ += text.size();
}

void AtomicFile::commit() {
  SS_REQUIRE(fd_ >= 0 && !committed_, "cannot write " << target_.string() << ": file is closed");
  if (::fsync(fd_) != 0) fail("fsync", errno);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail("close", errno);
  std::error_code ec;
  fs::rename(temp_, target_, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(temp_, ec);
    throw FileWriteError(target_, "rename of its temporary failed: " + why);
  }
  committed_ = true;
  fsync_folder(folder_of(target_), target_);
}

void fsync_folder(const fs::path& folder, const fs::path& target) {
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;  // the rename itself succeeded; nothing more can be done here
  const int rc = ::fsync(dir);
  const int err = errno;
  ::close(dir);
  if (rc != 0 && err != EINVAL && err != EROFS)
    throw FileWriteError(target, std::string("fsync of its folder failed: ") + std::strerror(err));
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  AtomicFile file(path);
  file.append(bytes);
  file.commit();
}

}  // namespace slidesparse
