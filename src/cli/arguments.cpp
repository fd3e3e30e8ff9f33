// Argument checks shared by the commands (see arguments.h).
#include "cli/arguments.h"

#include <algorithm>
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

std::vector<Sparsity> parse_sparsities(const std::vector<std::string>& texts) {
  std::vector<Sparsity> out;
  for (const std::string& t : texts) out.push_back(Sparsity::parse(t));
  return out;
}

}  // namespace slidesparse::cli
