// Writes a file so a reader sees the old content or the whole new one, never a part: a temporary
// file in the same folder, fsync, rename. Local to the report until main's io layer carries
// src/io/atomic_file.h (write_file_atomic); then the report switches to that one.
#pragma once

#include <filesystem>
#include <string_view>

namespace slidesparse::report {

// Creates missing parent folders; throws Error naming `path` on failure (the temporary removed).
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace slidesparse::report
