// The identity of this build, recorded beside every benchmark result so that numbers measured
// by different code are never mixed unknowingly: the project version and a hash of the sources
// that decide what is measured (src/, include/, cmake/, models/, CMakeLists.txt; computed at
// build time by cmake/build_info.cmake, no git needed).
#pragma once

#include <string>

namespace slidesparse {

struct BuildInfo {
  std::string version;      // "0.1.0"
  std::string source_hash;  // 12 hex digits
  // "0.1.0+src.1a2b3c4d5e6f": what case JSONs and run.json record as "build".
  std::string id() const { return version + "+src." + source_hash; }
};

const BuildInfo& build_info();

}  // namespace slidesparse
