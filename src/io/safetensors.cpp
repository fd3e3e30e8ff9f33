// safetensors reading (validated header, mmap, shards) and streaming writing. Assumes a
// little-endian host, like the format itself (x86-64 and aarch64 Linux).
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

namespace fs = std::filesystem;

std::string errno_text() { return std::strerror(errno); }

[[noreturn]] void bad_header(std::string_view what, const std::string& why) {
  throw FormatError("safetensors " + std::string(what) + ": " + why);
}

// Non-negative integer that fits int64, else FormatError.
int64_t header_uint(const nlohmann::json& v, std::string_view what, const std::string& where) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    bad_header(what, where + " must be a non-negative integer, got " + v.dump());
  return static_cast<int64_t>(v.get<uint64_t>());
}

TensorInfo parse_entry(const std::string& name, const nlohmann::json& e, std::string_view what) {
  const std::string where = "tensor '" + name + "'";
  if (!e.is_object()) bad_header(what, where + ": entry must be an object, got " + e.dump());
  for (const auto& [key, value] : e.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      bad_header(what, where + ": unknown key '" + key + "'");
  }
  TensorInfo t;
  t.name = name;
  auto dtype = e.find("dtype");
  if (dtype == e.end() || !dtype->is_string())
    bad_header(what, where + ": missing or non-string 'dtype'");
  try {
    t.dtype = parse_safetensors_dtype(dtype->get<std::string>());
  } catch (const FormatError& err) {
    bad_header(what, where + ": " + err.what());
  }
  auto shape = e.find("shape");
  if (shape == e.end() || !shape->is_array())
    bad_header(what, where + ": missing or non-list 'shape'");
  if (shape->size() > 16) bad_header(what, where + ": shape has more than 16 dimensions");
  for (const auto& d : *shape) t.shape.push_back(header_uint(d, what, where + " shape entry"));
  auto offsets = e.find("data_offsets");
  if (offsets == e.end() || !offsets->is_array() || offsets->size() != 2)
    bad_header(what, where + ": 'data_offsets' must be a list [begin, end]");
  t.begin = header_uint((*offsets)[0], what, where + " data_offsets[0]");
  t.end = header_uint((*offsets)[1], what, where + " data_offsets[1]");
  if (t.end < t.begin)
    bad_header(what, where + ": data_offsets end " + std::to_string(t.end) + " < begin " +
                         std::to_string(t.begin));
  // dtype x shape must give exactly the byte count, computed without overflow.
  int64_t count = 1;
  for (int64_t d : t.shape) {
    if (__builtin_mul_overflow(count, d, &count))
      bad_header(what, where + ": shape " + e["shape"].dump() + " overflows 64 bits");
  }
  int64_t expected = 0;
  if (__builtin_mul_overflow(count, dtype_size(t.dtype), &expected))
    bad_header(what, where + ": byte size of shape " + e["shape"].dump() + " overflows 64 bits");
  if (expected != t.nbytes())
    bad_header(what, where + ": " + std::string(dtype_name(t.dtype)) + " shape " +
                         e["shape"].dump() + " needs " + std::to_string(expected) +
                         " bytes but data_offsets span " + std::to_string(t.nbytes()));
  return t;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TensorInfo* SafetensorsHeader::find(std::string_view name) const {
  for (const TensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file, uint64_t file_size,
                                           std::string_view what) {
  if (file_size < 8 || file.size() < 8)
    bad_header(what, "truncated: " + std::to_string(file_size) +
                         " bytes, but a safetensors file starts with an 8-byte header length");
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file.data(), 8);
  if (header_bytes > file_size - 8)
    bad_header(what, "header length " + std::to_string(header_bytes) +
                         " runs past the end of the file (" + std::to_string(file_size) +
                         " bytes)");
  if (header_bytes > kMaxSafetensorsHeaderBytes)
    bad_header(what, "header length " + std::to_string(header_bytes) + " exceeds the " +
                         std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit");
  if (header_bytes < 2) bad_header(what, "header of " + std::to_string(header_bytes) + " bytes");
  if (file.size() < 8 + header_bytes)
    bad_header(what, "buffer holds " + std::to_string(file.size()) + " bytes, header needs " +
                         std::to_string(8 + header_bytes));
  const char* text = reinterpret_cast<const char*>(file.data()) + 8;

  // Duplicate top-level keys are an error (the JSON parser would silently keep the last one);
  // nesting deeper than the format uses is refused without building it.
  std::set<std::string> seen;
  std::string duplicate;
  bool too_deep = false;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth > 3) {
      too_deep = true;
      return false;
    }
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string()) {
      if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, text + header_bytes, callback);
  } catch (const nlohmann::json::exception& e) {
    bad_header(what, std::string("header is not valid JSON: ") + e.what());
  }
  if (too_deep) bad_header(what, "header nests deeper than the format allows");
  if (!j.is_object())
    bad_header(what, std::string("header must be a JSON object, got ") + j.type_name());
  if (!duplicate.empty())
    bad_header(what, "tensor '" + duplicate + "' appears twice in the header");

  SafetensorsHeader header;
  header.header_bytes = header_bytes;
  const uint64_t data_size = file_size - 8 - header_bytes;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) bad_header(what, "__metadata__ must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          bad_header(what,
                     "__metadata__ value of '" + key + "' must be a string, got " + value.dump());
        header.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (name.empty()) bad_header(what, "a tensor has an empty name");
    header.tensors.push_back(parse_entry(name, entry, what));
  }
  // Offsets must tile [0, data_size) exactly: no overlap, no hole, nothing past the end.
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorInfo& a, const TensorInfo& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : header.tensors) {
    if (static_cast<uint64_t>(t.end) > data_size)
      bad_header(what, "tensor '" + t.name + "' data_offsets [" + std::to_string(t.begin) + ", " +
                           std::to_string(t.end) + ") are out of range: the data region has " +
                           std::to_string(data_size) + " bytes");
    if (static_cast<uint64_t>(t.begin) < covered)
      bad_header(what, "tensor '" + t.name + "' data_offsets [" + std::to_string(t.begin) + ", " +
                           std::to_string(t.end) + ") overlap tensor '" + previous->name + "'");
    if (static_cast<uint64_t>(t.begin) > covered)
      bad_header(what, "bytes [" + std::to_string(covered) + ", " + std::to_string(t.begin) +
                           ") of the data region belong to no tensor (before '" + t.name + "')");
    covered = static_cast<uint64_t>(t.end);
    previous = &t;
  }
  if (covered != data_size)
    bad_header(what, "tensors cover " + std::to_string(covered) +
                         " bytes but the data region has " + std::to_string(data_size) +
                         " (truncated file or trailing bytes)");
  return header;
}

// ---- SafetensorsFile ---------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string err = errno_text();
    ::close(fd);
    throw Error("cannot stat " + path.string() + ": " + err);
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    parse_safetensors_header({}, size_, path.string());  // throws the "truncated" error
  }
  void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw Error("cannot mmap " + path.string() + ": " + errno_text());
  base_ = static_cast<const std::byte*>(map);
  try {
    header_ = parse_safetensors_header({base_, size_}, size_, path.string());
  } catch (...) {
    unmap();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      header_(std::move(other.header_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    header_ = std::move(other.header_);
  }
  return *this;
}

void SafetensorsFile::unmap() noexcept {
  if (base_ != nullptr) ::munmap(const_cast<std::byte*>(base_), size_);
  base_ = nullptr;
}

const TensorInfo& SafetensorsFile::info(std::string_view name) const {
  const TensorInfo* t = header_.find(name);
  if (t == nullptr)
    throw Error("tensor '" + std::string(name) + "' not found in " + path_.string());
  return *t;
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& tensor) const {
  return {base_ + header_.data_offset() + tensor.begin, static_cast<size_t>(tensor.nbytes())};
}

void SafetensorsFile::release(const TensorInfo& tensor) const { release(bytes(tensor)); }

void SafetensorsFile::release(std::span<const std::byte> range) const {
  if (range.empty() || base_ == nullptr) return;
  SS_REQUIRE(range.data() >= base_ && range.data() + range.size() <= base_ + size_,
             "SafetensorsFile::release: range outside the mapping of " << path_.string());
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t begin = static_cast<uint64_t>(range.data() - base_);
  uint64_t end = begin + range.size();
  begin = begin / page * page;
  end = std::min<uint64_t>((end + page - 1) / page * page, (size_ + page - 1) / page * page);
  // Advisory: file-backed pages come back from the page cache if touched again.
  ::madvise(const_cast<std::byte*>(base_) + begin, end - begin, MADV_DONTNEED);
}

// ---- Checkpoint --------------------------------------------------------------------------------

Checkpoint::Checkpoint(const fs::path& dir) : dir_(dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("checkpoint directory not found: " + dir.string());
  const fs::path index_path = dir / "model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  if (fs::is_regular_file(index_path, ec)) {
    sharded_ = true;
    std::ifstream in(index_path, std::ios::binary);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(index_path.string() + " is not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw FormatError(index_path.string() + ": expected an object with a 'weight_map' object");
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string())
        throw FormatError(index_path.string() + ": weight_map['" + name + "'] is not a string");
      std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        throw FormatError(index_path.string() + ": weight_map['" + name + "'] = '" + f +
                          "' is not a file name in the checkpoint directory");
      weight_map[name] = f;
    }
    if (weight_map.empty()) throw FormatError(index_path.string() + ": weight_map is empty");
    if (auto m = j.find("metadata"); m != j.end() && m->is_object()) {
      for (const auto& [key, value] : m->items())
        index_metadata_[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
    std::set<std::string> shard_names;
    for (const auto& [name, file] : weight_map) shard_names.insert(file);
    for (const std::string& shard : shard_names) {
      fs::path shard_path = dir / shard;
      if (!fs::is_regular_file(shard_path, ec))
        throw FormatError(index_path.string() + " lists shard '" + shard +
                          "', which does not exist");
      files_.push_back(std::make_unique<SafetensorsFile>(shard_path));
    }
  } else if (fs::is_regular_file(dir / "model.safetensors", ec)) {
    files_.push_back(std::make_unique<SafetensorsFile>(dir / "model.safetensors"));
  } else {
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".safetensors") found.push_back(entry.path());
    if (found.size() != 1)
      throw Error("no weights in " + dir.string() +
                  ": expected model.safetensors or model.safetensors.index.json" +
                  (found.empty() ? std::string() : " (found several .safetensors files)"));
    files_.push_back(std::make_unique<SafetensorsFile>(found.front()));
  }
  for (size_t i = 0; i < files_.size(); ++i) {
    const SafetensorsFile& f = *files_[i];
    for (const TensorInfo& t : f.tensors()) {
      if (sharded_) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end())
          throw FormatError("tensor '" + t.name + "' of " + f.path().string() +
                            " is not listed in " + index_path.string());
        if (it->second != f.path().filename().string())
          throw FormatError("tensor '" + t.name + "' is in " + f.path().string() +
                            " but the index places it in '" + it->second + "'");
      }
      if (!file_index_.emplace(t.name, i).second)
        throw FormatError("tensor '" + t.name + "' appears in more than one shard");
      names_.push_back(t.name);
    }
  }
  for (const auto& [name, file] : weight_map) {
    if (!file_index_.contains(name))
      throw FormatError("missing tensor '" + name + "': " + index_path.string() +
                        " places it in '" + file + "', which does not hold it");
  }
}

bool Checkpoint::contains(std::string_view name) const {
  return file_index_.find(name) != file_index_.end();
}

const SafetensorsFile& Checkpoint::file_of(std::string_view name) const {
  auto it = file_index_.find(name);
  if (it == file_index_.end())
    throw Error("missing tensor '" + std::string(name) + "' in checkpoint " + dir_.string());
  return *files_[it->second];
}

const TensorInfo& Checkpoint::info(std::string_view name) const { return file_of(name).info(name); }

std::span<const std::byte> Checkpoint::bytes(std::string_view name) const {
  const SafetensorsFile& f = file_of(name);
  return f.bytes(f.info(name));
}

void Checkpoint::release(std::string_view name) const {
  const SafetensorsFile& f = file_of(name);
  f.release(f.info(name));
}

// ---- SafetensorsWriter -------------------------------------------------------------------------

int64_t TensorSpec::nbytes() const {
  int64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    SS_REQUIRE(d >= 0, "tensor '" << name << "': negative dimension " << d);
    SS_REQUIRE(!__builtin_mul_overflow(n, d, &n), "tensor '" << name << "': size overflows");
  }
  return n;
}

SafetensorsWriter::SafetensorsWriter(fs::path path, std::vector<TensorSpec> specs,
                                     std::map<std::string, std::string> metadata)
    : path_(std::move(path)), specs_(std::move(specs)) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < specs_.size(); ++i) {
    const TensorSpec& s = specs_[i];
    SS_REQUIRE(
        !s.name.empty() && s.name != "__metadata__",
        "safetensors writer " << path_.string() << ": invalid tensor name '" << s.name << "'");
    SS_REQUIRE(index_.emplace(s.name, i).second,
               "safetensors writer " << path_.string() << ": tensor '" << s.name << "' twice");
    uint64_t bytes = static_cast<uint64_t>(s.nbytes());
    header[s.name] = {{"dtype", safetensors_dtype_name(s.dtype)},
                      {"shape", s.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offsets_.push_back(offset);
    offset += bytes;
  }
  data_bytes_ = offset;
  written_.assign(specs_.size(), 0);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data region 8-byte aligned, as the reference
  data_offset_ = 8 + text.size();

  // The file exists only once the header is known to be valid.
  file_.emplace(path_);
  const uint64_t length = text.size();
  file_->write_at(std::as_bytes(std::span(&length, 1)), 0);
  file_->write_at(std::as_bytes(std::span(text.data(), text.size())), 8);
}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::write(std::string_view name, std::span<const std::byte> data) {
  auto it = index_.find(name);
  SS_REQUIRE(it == index_.end() || written_[it->second] == 0,
             "safetensors writer " << path_.string() << ": tensor '" << name << "' written twice");
  SS_REQUIRE(
      it == index_.end() || data.size() == static_cast<uint64_t>(specs_[it->second].nbytes()),
      "safetensors writer " << path_.string() << ": tensor '" << name << "' has " << data.size()
                            << " bytes, declared " << specs_[it->second].nbytes());
  write_part(name, data);
}

void SafetensorsWriter::write_part(std::string_view name, std::span<const std::byte> data) {
  SS_REQUIRE(!finished_ && file_, "safetensors writer " << path_.string() << " is closed");
  auto it = index_.find(name);
  SS_REQUIRE(it != index_.end(),
             "safetensors writer " << path_.string() << ": tensor '" << name << "' not declared");
  const size_t i = it->second;
  const uint64_t expected = static_cast<uint64_t>(specs_[i].nbytes());
  SS_REQUIRE(written_[i] + data.size() <= expected,
             "safetensors writer " << path_.string() << ": tensor '" << name << "' gets "
                                   << written_[i] + data.size() << " bytes, declared " << expected);
  file_->write_at(data, data_offset_ + offsets_[i] + written_[i]);
  written_[i] += data.size();
}

void SafetensorsWriter::finish() {
  SS_REQUIRE(!finished_ && file_, "safetensors writer " << path_.string() << " is closed");
  for (size_t i = 0; i < specs_.size(); ++i)
    SS_REQUIRE(written_[i] == static_cast<uint64_t>(specs_[i].nbytes()),
               "safetensors writer " << path_.string() << ": tensor '" << specs_[i].name
                                     << "' was written with " << written_[i] << " of "
                                     << specs_[i].nbytes() << " bytes");
  file_->commit();
  finished_ = true;
}

}  // namespace slidesparse
