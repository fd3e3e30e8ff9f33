// safetensors files: a hard-validating header parser (usable on a byte buffer, for the fuzzer),
// a memory-mapped lazy reader, sharded checkpoints (model.safetensors.index.json) and a streaming
// writer (header first with known sizes, tensors one at a time, temp file + rename).
// File layout: u64 little-endian header length H, H bytes of JSON, then the data region; tensor
// offsets in the JSON are relative to the data region and must tile it exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/atomic_file.h"
#include "slidesparse/dtype.h"

namespace slidesparse {

// Headers larger than this are refused (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  int64_t begin = 0;  // byte offsets into the data region, [begin, end)
  int64_t end = 0;

  int64_t numel() const;
  int64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;              // in data-offset order
  std::map<std::string, std::string> metadata;  // "__metadata__" (string -> string)
  uint64_t header_bytes = 0;                    // H, the JSON length
  uint64_t data_offset() const { return 8 + header_bytes; }

  const TensorInfo* find(std::string_view name) const;
};

// Validates and parses a safetensors header. `file` holds at least the first 8 + H bytes of a file
// of `file_size` bytes (the fuzzer passes a whole buffer and its size). `what` names the source in
// messages. Throws FormatError on: fewer than 8 bytes, H past the end or over the limit, JSON that
// is invalid or not an object, duplicate names, a bad entry (unknown dtype, bad shape, bad
// data_offsets, unknown keys), a byte count that does not match dtype x shape, and offsets that
// overlap, leave holes or do not cover the data region exactly.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file, uint64_t file_size,
                                           std::string_view what);

// One safetensors file, memory-mapped read-only. Tensor bytes are only paged in when touched;
// release() drops a tensor's pages again so converting a model keeps a bounded resident set.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  // Throws Error naming the file when the tensor is absent.
  const TensorInfo& info(std::string_view name) const;
  std::span<const std::byte> bytes(const TensorInfo& tensor) const;
  std::span<const std::byte> bytes(std::string_view name) const { return bytes(info(name)); }
  // Tells the kernel the pages of this tensor are no longer needed (madvise DONTNEED).
  void release(const TensorInfo& tensor) const;
  // The same for any byte range of this file's mapping (e.g. a chunk of a large tensor).
  void release(std::span<const std::byte> range) const;
  uint64_t file_size() const { return size_; }

 private:
  void unmap() noexcept;
  std::filesystem::path path_;
  const std::byte* base_ = nullptr;
  uint64_t size_ = 0;
  SafetensorsHeader header_;
};

// A model directory's weights: model.safetensors, or the shards listed in
// model.safetensors.index.json (every listed tensor must be in its shard and every shard tensor
// must be listed), or, without either, the single *.safetensors file of the directory.
class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  bool sharded() const { return sharded_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // All tensor names, shard by shard in data order.
  const std::vector<std::string>& tensor_names() const { return names_; }
  bool contains(std::string_view name) const;
  const TensorInfo& info(std::string_view name) const;
  const SafetensorsFile& file_of(std::string_view name) const;
  std::span<const std::byte> bytes(std::string_view name) const;
  void release(std::string_view name) const;
  // "__metadata__" of model.safetensors.index.json ("metadata" key), empty when not sharded.
  const std::map<std::string, std::string>& index_metadata() const { return index_metadata_; }

 private:
  std::filesystem::path dir_;
  bool sharded_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<std::string> names_;
  std::map<std::string, size_t, std::less<>> file_index_;  // tensor name -> files_ index
  std::map<std::string, std::string> index_metadata_;
};

// What the writer needs to know before any data: name, dtype, shape.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  int64_t nbytes() const;
};

// Streaming writer. The header (offsets in the order of `specs`) goes out first; then each tensor
// is written once with write() (any order, exact byte count); finish() checks every tensor was
// written and commits the file (io/atomic_file.h: fsync, rename, fsync of the folder). Destroyed
// without finish() (an error on the way), it removes the temporary file and leaves `path`
// untouched.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::vector<TensorSpec> specs,
                    std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void write(std::string_view name, std::span<const std::byte> data);
  // Writes a tensor in consecutive parts: each call continues where the previous one ended; the
  // tensor counts as written once its declared byte count is reached.
  void write_part(std::string_view name, std::span<const std::byte> data);
  template <class T>
  void write_values(std::string_view name, std::span<const T> values) {
    write(name, std::as_bytes(values));
  }
  void finish();
  // Bytes of the finished file (header included).
  uint64_t total_bytes() const { return data_offset_ + data_bytes_; }
  uint64_t data_bytes() const { return data_bytes_; }

 private:
  std::filesystem::path path_;
  std::optional<AtomicFile> file_;  // opened once the header is valid
  std::vector<TensorSpec> specs_;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<uint64_t> offsets_;
  std::vector<uint64_t> written_;  // bytes written so far, per tensor
  uint64_t data_offset_ = 0;
  uint64_t data_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace slidesparse
