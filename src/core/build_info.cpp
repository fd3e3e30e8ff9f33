#include "slidesparse/build_info.h"

#include "slidesparse/build_info_values.h"  // generated at build time
#include "slidesparse/version.h"

namespace slidesparse {

const BuildInfo& build_info() {
  static const BuildInfo info{SLIDESPARSE_VERSION, SLIDESPARSE_SOURCE_HASH};
  return info;
}

}  // namespace slidesparse
