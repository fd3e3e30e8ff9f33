// The commands' argument parsing, done before anything looks for a GPU: dtypes against the list
// that command accepts (and only that list in the error) and Z:L patterns. The library entry
// points (run_kernel_bench, run_quant_bench, run_tuning, run_tune_compare) then check the rest
// (model names, M lists, counts) before they too look for a GPU, and without one they throw
// NotSupportedError: the command ends with exit status 1, never a silent "skipped".
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "slidesparse/dtype.h"
#include "slidesparse/sparsity.h"

namespace slidesparse::cli {

// `text` (int8, fp8, bf16, ... and their aliases) as one of `accepted`, else Error
// "<command>: --<option> 'text' is not accepted: accepted are int8, fp8".
DType parse_dtype_option(std::string_view command, std::string_view option, std::string_view text,
                         std::initializer_list<DType> accepted);
std::vector<DType> parse_dtype_options(std::string_view command, std::string_view option,
                                       const std::vector<std::string>& texts,
                                       std::initializer_list<DType> accepted);
std::vector<Sparsity> parse_sparsities(const std::vector<std::string>& texts);
// Checks, without creating anything, that folder `dir` can be written: it, or the nearest folder
// above it that exists (where it will be created), is a writable folder. Else Error
// "<command>: cannot write <option> <dir>: <reason>", so a long run does not fail at its end.
void require_writable_folder(std::string_view command, std::string_view option,
                             const std::filesystem::path& dir);

}  // namespace slidesparse::cli
