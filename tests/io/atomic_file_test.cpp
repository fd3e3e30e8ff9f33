// write_file_atomic / AtomicFile: the new content appears whole, a failure names the target (not
// the temporary), leaves the old content and no temporary behind.
#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/temp_dir.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// Names in `dir` (recursively) that look like a temporary of AtomicFile.
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos)
      found.push_back(e.path().string());
  return found;
}

std::string error_of(const fs::path& path, std::string_view bytes) {
  try {
    write_file_atomic(path, bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(AtomicFile, WritesReplacesAndCreatesFolders) {
  test::TempDir dir;
  const fs::path file = dir.path() / "a" / "b" / "c.txt";
  write_file_atomic(file, "one");
  EXPECT_EQ(read_text(file), "one");
  write_file_atomic(file, "two, longer");
  EXPECT_EQ(read_text(file), "two, longer");
  write_file_atomic(file, "");
  EXPECT_EQ(read_text(file), "");
  EXPECT_TRUE(temporaries(dir.path()).empty());
}

TEST(AtomicFile, FailureNamesTheTargetAndLeavesNoTemporary) {
  test::TempDir dir;
  // A folder in the way of the rename.
  fs::create_directories(dir.path() / "blocked" / "inside");
  std::string what = error_of(dir.path() / "blocked", "x");
  EXPECT_NE(what.find("cannot write " + (dir.path() / "blocked").string()), std::string::npos)
      << what;
  EXPECT_EQ(what.find(".tmp."), std::string::npos) << what;
  EXPECT_NE(what.find("Is a directory"), std::string::npos) << what;  // the rename's own reason
  try {
    write_file_atomic(dir.path() / "blocked", "x");
    ADD_FAILURE() << "expected FileWriteError";
  } catch (const FileWriteError& e) {
    EXPECT_EQ(e.target(), dir.path() / "blocked");
  }
  // A file where a parent folder should be.
  write_file_atomic(dir.path() / "plain", "file");
  what = error_of(dir.path() / "plain" / "x.json", "x");
  EXPECT_NE(what.find((dir.path() / "plain" / "x.json").string()), std::string::npos) << what;
  EXPECT_EQ(read_text(dir.path() / "plain"), "file");
  EXPECT_TRUE(temporaries(dir.path()).empty());
}

TEST(AtomicFile, ReadOnlyFolderIsAPlainError) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: a 0555 folder does not refuse root";
  test::TempDir dir;
  const fs::path ro = dir.path() / "ro";
  fs::create_directories(ro);
  write_file_atomic(ro / "kept.txt", "old");
  ::chmod(ro.c_str(), 0555);
  const std::string what = error_of(ro / "kept.txt", "new");
  ::chmod(ro.c_str(), 0755);
  EXPECT_NE(what.find("cannot write " + (ro / "kept.txt").string()), std::string::npos) << what;
  EXPECT_NE(what.find("Permission denied"), std::string::npos) << what;
  EXPECT_EQ(read_text(ro / "kept.txt"), "old");
  EXPECT_TRUE(temporaries(dir.path()).empty());
}

TEST(AtomicFile, UncommittedFileLeavesTheTargetAsItWas) {
  test::TempDir dir;
  const fs::path file = dir.path() / "t.bin";
  write_file_atomic(file, "old");
  {
    AtomicFile f(file);
    f.append("new");
    EXPECT_TRUE(fs::exists(f.temp_path()));
    EXPECT_EQ(f.temp_path().parent_path(), file.parent_path());  // same file system: rename works
  }
  EXPECT_EQ(read_text(file), "old");
  EXPECT_TRUE(temporaries(dir.path()).empty());
}

TEST(AtomicFile, WriteAtFillsOffsetsAndCommitReplaces) {
  test::TempDir dir;
  const fs::path file = dir.path() / "t.bin";
  AtomicFile f(file);
  const std::string tail = "world", head = "hello ";
  f.write_at(std::as_bytes(std::span(tail.data(), tail.size())), head.size());
  f.write_at(std::as_bytes(std::span(head.data(), head.size())), 0);
  EXPECT_FALSE(fs::exists(file));
  f.commit();
  EXPECT_EQ(read_text(file), "hello world");
  EXPECT_THROW(f.append("more"), Error);  // committed: closed
  EXPECT_TRUE(temporaries(dir.path()).empty());
}

TEST(AtomicFile, TwoWritersOfOneTargetDoNotShareATemporary) {
  test::TempDir dir;
  const fs::path file = dir.path() / "t.bin";
  AtomicFile a(file), b(file);
  EXPECT_NE(a.temp_path(), b.temp_path());
  a.append("a");
  b.append("b");
  a.commit();
  b.commit();
  EXPECT_EQ(read_text(file), "b");
}

}  // namespace
}  // namespace slidesparse
