// Argument checks shared by the commands (see arguments.h).
#include "cli/arguments.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "slidesparse/error.h"

namespace slidesparse::cli {

DType parse_dtype_option(std::string_view command, std::string_view option, std::string_view text,
                         std::initializer_list<DType> accepted) {
  std::optional<DType> dtype;
  try {
    dtype = parse_dtype(text);
  } catch (const Error&) {
  }
  if (dtype && std::find(accepted.begin(), accepted.end(), *dtype) != accepted.end()) return *dtype;
  std::string names;
  for (DType d : accepted) names += (names.empty() ? "" : ", ") + std::string(dtype_name(d));
  throw Error(std::string(command) + ": " + std::string(option) + " '" + std::string(text) +
              "' is not accepted: accepted are " + names);
}

std::vector<DType> parse_dtype_options(std::string_view command, std::string_view option,
                                       const std::vector<std::string>& texts,
                                       std::initializer_list<DType> accepted) {
  std::vector<DType> out;
  for (const std::string& t : texts)
    out.push_back(parse_dtype_option(command, option, t, accepted));
  return out;
}

void require_writable_folder(std::string_view command, std::string_view option,
                             const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  auto fail = [&](const std::string& reason) {
    throw Error(std::string(command) + ": cannot write " + std::string(option) + " " +
                dir.string() + ": " + reason);
  };
  std::error_code ec;
  fs::path existing = fs::absolute(dir, ec);
  if (ec) fail(ec.message());
  while (!fs::exists(existing, ec) && existing.has_parent_path() &&
         existing != existing.parent_path())
    existing = existing.parent_path();
  if (!fs::is_directory(existing, ec)) fail(existing.string() + " is not a folder");
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    fail(existing.string() + ": " + std::strerror(errno));
}

std::vector<Sparsity> parse_sparsities(const std::vector<std::string>& texts) {
  std::vector<Sparsity> out;
  for (const std::string& t : texts) out.push_back(Sparsity::parse(t));
  return out;
}

}  // namespace slidesparse::cli
