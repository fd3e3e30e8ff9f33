// GemmAlgorithm / GemmBackend text and JSON forms, as the tuning database stores them. The
// cuBLASLt algorithm is kept as its 8 opaque 64-bit words (hex strings, so JSON loses no bits).
#include "slidesparse/gemm/gemm_algorithm.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <sstream>
#include <string>

#include "slidesparse/error.h"

namespace slidesparse {
namespace {

std::string lower(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string hex_word(uint64_t value) {
  char buffer[19];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

uint64_t parse_hex_word(const std::string& text) {
  uint64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) begin += 2;
  auto [ptr, ec] = std::from_chars(begin, end, value, 16);
  if (ec != std::errc() || ptr != end || begin == end)
    throw FormatError("GemmAlgorithm: cublaslt_algo word '" + text + "' is not a hex number");
  return value;
}

template <class T>
T get_field(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("GemmAlgorithm: field '") + key +
                      "' has the wrong type: " + e.what());
  }
}

}  // namespace

std::string_view backend_name(GemmBackend backend) {
  switch (backend) {
    case GemmBackend::kCublasLt:
      return "cublaslt";
    case GemmBackend::kCusparseLt:
      return "cusparselt";
  }
  throw Error("backend_name: unknown GemmBackend value " +
              std::to_string(static_cast<int>(backend)));
}

GemmBackend parse_backend(std::string_view text) {
  const std::string s = lower(text);
  if (s == "cublaslt" || s == "dense" || s == "cublas") return GemmBackend::kCublasLt;
  if (s == "cusparselt" || s == "sparse" || s == "slidesparse") return GemmBackend::kCusparseLt;
  throw Error("unknown GEMM backend '" + std::string(text) +
              "': accepted are cublaslt (dense) and cusparselt (sparse)");
}

std::string GemmAlgorithm::describe() const {
  if (is_default) return "default";
  std::ostringstream os;
  if (cublaslt_heuristic_index >= 0) {
    os << "heuristic #" << cublaslt_heuristic_index;
    return os.str();
  }
  os << "cfg " << alg_config_id;
  if (split_k == -1)
    os << " segment-k";
  else if (split_k > 1)
    os << " split-k " << split_k;
  if (split_k_mode == 1) os << " (one kernel)";
  if (split_k_mode == 2) os << " (two kernels)";
  return os.str();
}

void to_json(nlohmann::json& j, const GemmAlgorithm& a) {
  j = nlohmann::json::object();
  j["is_default"] = a.is_default;
  j["alg_config_id"] = a.alg_config_id;
  j["split_k"] = a.split_k;
  j["split_k_mode"] = a.split_k_mode;
  j["cublaslt_heuristic_index"] = a.cublaslt_heuristic_index;
  nlohmann::json words = nlohmann::json::array();
  for (uint64_t w : a.cublaslt_algo) words.push_back(hex_word(w));
  j["cublaslt_algo"] = std::move(words);
}

void from_json(const nlohmann::json& j, GemmAlgorithm& a) {
  if (!j.is_object()) throw FormatError("GemmAlgorithm: expected a JSON object, got " + j.dump());
  GemmAlgorithm out;
  out.is_default = get_field<bool>(j, "is_default", true);
  out.alg_config_id = get_field<int>(j, "alg_config_id", 0);
  out.split_k = get_field<int>(j, "split_k", 1);
  out.split_k_mode = get_field<int>(j, "split_k_mode", 0);
  out.cublaslt_heuristic_index = get_field<int>(j, "cublaslt_heuristic_index", -1);
  if (out.alg_config_id < 0)
    throw FormatError("GemmAlgorithm: alg_config_id must be >= 0, got " +
                      std::to_string(out.alg_config_id));
  if (out.split_k == 0 || out.split_k < -1)
    throw FormatError("GemmAlgorithm: split_k must be -1 (Segment-K) or >= 1, got " +
                      std::to_string(out.split_k));
  if (out.split_k_mode < 0 || out.split_k_mode > 2)
    throw FormatError("GemmAlgorithm: split_k_mode must be 0, 1 or 2, got " +
                      std::to_string(out.split_k_mode));
  if (auto it = j.find("cublaslt_algo"); it != j.end()) {
    if (!it->is_array() || it->size() != out.cublaslt_algo.size())
      throw FormatError("GemmAlgorithm: cublaslt_algo must be an array of " +
                        std::to_string(out.cublaslt_algo.size()) + " hex strings");
    for (size_t i = 0; i < out.cublaslt_algo.size(); ++i) {
      if (!(*it)[i].is_string())
        throw FormatError("GemmAlgorithm: cublaslt_algo[" + std::to_string(i) +
                          "] must be a hex string");
      out.cublaslt_algo[i] = parse_hex_word((*it)[i].get<std::string>());
    }
  }
  a = out;
}

}  // namespace slidesparse
