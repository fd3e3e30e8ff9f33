// slidesparse.json reading and writing (see slide_manifest.h).
#include "io/slide_manifest.h"

#include <fstream>

#include "io/checksum.h"
#include "slidesparse/error.h"

namespace slidesparse {
namespace {

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw FormatError(what + ": " + why);
}

const nlohmann::json& need(const nlohmann::json& j, const char* key, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end()) bad(what, std::string("missing key '") + key + "'");
  return *it;
}

std::string need_string(const nlohmann::json& j, const char* key, const std::string& what) {
  const nlohmann::json& v = need(j, key, what);
  if (!v.is_string()) bad(what, std::string("key '") + key + "' must be a string");
  return v.get<std::string>();
}

int64_t need_positive(const nlohmann::json& j, const char* key, const std::string& what) {
  const nlohmann::json& v = need(j, key, what);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0)
    bad(what, std::string("key '") + key + "' must be a positive integer, got " + v.dump());
  return v.get<int64_t>();
}

}  // namespace

nlohmann::json SlideManifest::to_json() const {
  nlohmann::json tensors_json = nlohmann::json::object();
  for (const SlidTensor& t : tensors) {
    nlohmann::json e = {{"n", t.n},
                        {"k", t.k},
                        {"k_slide", t.k_slide},
                        {"shape", {t.n, t.k_slide}},
                        {"source_dtype", dtype_name(t.source_dtype)}};
    if (!t.scale.empty()) e["scale"] = t.scale;
    tensors_json[t.name] = e;
  }
  return {{"format", "slidesparse"},
          {"format_version", kSlideManifestFormatVersion},
          {"tool_version", tool_version},
          {"sparsity", sparsity.name()},
          {"density", sparsity.density_name()},
          {"precision", dtype_name(precision)},
          {"weight_layout",
           "W' [n, k_slide] row-major, 2:4 along k_slide; scale F32 [n, 1] per output channel"},
          {"assume_pruned", assume_pruned},
          {"source",
           {{"checksum_algorithm", checksum_algorithm},
            {"checksum", source_checksum},
            {"files", source_files}}},
          {"tensors", tensors_json}};
}

SlideManifest SlideManifest::from_json(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) bad(what, "expected a JSON object");
  if (need_string(j, "format", what) != "slidesparse")
    bad(what, "key 'format' is not \"slidesparse\"");
  const nlohmann::json& version = need(j, "format_version", what);
  if (!version.is_number_integer() || version.get<int>() != kSlideManifestFormatVersion)
    bad(what, "unsupported format_version " + version.dump() + " (this build reads " +
                  std::to_string(kSlideManifestFormatVersion) + ")");
  SlideManifest m;
  m.tool_version = need_string(j, "tool_version", what);
  try {
    m.sparsity = Sparsity::parse(need_string(j, "sparsity", what));
    m.precision = parse_dtype(need_string(j, "precision", what));
  } catch (const FormatError&) {
    throw;
  } catch (const Error& e) {
    bad(what, e.what());
  }
  if (m.precision != DType::kI8 && m.precision != DType::kFP8E4M3 && m.precision != DType::kBF16)
    bad(what, "precision must be int8, fp8 or bf16");
  if (auto it = j.find("assume_pruned"); it != j.end() && it->is_boolean())
    m.assume_pruned = it->get<bool>();
  const nlohmann::json& source = need(j, "source", what);
  if (!source.is_object()) bad(what, "key 'source' must be an object");
  m.checksum_algorithm = need_string(source, "checksum_algorithm", what + " source");
  m.source_checksum = need_string(source, "checksum", what + " source");
  const nlohmann::json& files = need(source, "files", what + " source");
  if (!files.is_object()) bad(what, "source.files must be an object");
  for (const auto& [name, digest] : files.items()) {
    if (!digest.is_string()) bad(what, "source.files['" + name + "'] must be a string");
    m.source_files[name] = digest.get<std::string>();
  }
  const nlohmann::json& tensors = need(j, "tensors", what);
  if (!tensors.is_object()) bad(what, "key 'tensors' must be an object");
  for (const auto& [name, e] : tensors.items()) {
    const std::string where = what + " tensor '" + name + "'";
    if (!e.is_object()) bad(where, "entry must be an object");
    SlidTensor t;
    t.name = name;
    t.n = need_positive(e, "n", where);
    t.k = need_positive(e, "k", where);
    t.k_slide = need_positive(e, "k_slide", where);
    if (t.k_slide != m.sparsity.k_slide(t.k))
      bad(where, "k_slide " + std::to_string(t.k_slide) + " does not match " + m.sparsity.name() +
                     " for k " + std::to_string(t.k) + " (expected " +
                     std::to_string(m.sparsity.k_slide(t.k)) + ")");
    if (auto s = e.find("scale"); s != e.end()) {
      if (!s->is_string()) bad(where, "key 'scale' must be a string");
      t.scale = s->get<std::string>();
    }
    if ((m.precision == DType::kBF16) != t.scale.empty())
      bad(where, m.precision == DType::kBF16 ? "bf16 weights carry no scale"
                                             : "int8 / fp8 weights need a 'scale' tensor name");
    try {
      t.source_dtype = parse_dtype(need_string(e, "source_dtype", where));
    } catch (const FormatError&) {
      throw;
    } catch (const Error& err) {
      bad(where, err.what());
    }
    m.tensors.push_back(std::move(t));
  }
  return m;
}

SlideManifest SlideManifest::load(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kSlideManifestFile;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("not a SlideSparse checkpoint: " + path.string() +
                " is missing (convert the model with `slidesparse convert` first)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path.string() + " is not valid JSON: " + e.what());
  }
  return from_json(j, path.string());
}

std::string SlideManifest::combine_checksums(const std::map<std::string, std::string>& files) {
  Fnv1a64 h;
  for (const auto& [name, digest] : files) {
    const std::string line = name + ":" + digest + "\n";
    h.update(std::as_bytes(std::span(line.data(), line.size())));
  }
  return h.hex();
}

}  // namespace slidesparse
