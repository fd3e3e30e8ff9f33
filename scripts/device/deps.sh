#!/usr/bin/env bash
# Sourced by the device_*.sh scripts, ON the device machine. The GPU machine has no network: when
# a build dependency is missing there (nlohmann-json, CLI11, GoogleTest), fall back to the Debian
# packages unpacked here into the ignored folder .devdeps/ (carry it with the `device` tool), and
# build GoogleTest from the source that package ships. Sets DEVICE_CMAKE_ARGS and defines
# device_configure BUILD_DIR LOG (configure for sm_90, Release, Ninja, with those args).
#   Prepare here:  mkdir -p /tmp/debs && (cd /tmp/debs && apt-get download nlohmann-json3-dev \
#                    libcli11-dev googletest) && for f in /tmp/debs/*.deb; do dpkg -x "$f" .devdeps; done
device_deps_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEVICE_CMAKE_ARGS=()
_prefixes=()
_have_cmake_pkg() {  # name: a <name>Config.cmake / <lower>-config.cmake under the usual prefixes
  local lower
  lower="$(echo "$1" | tr '[:upper:]' '[:lower:]')"
  compgen -G "/usr/lib/cmake/$1/*onfig.cmake" >/dev/null || compgen -G "/usr/share/cmake/$1/*onfig.cmake" >/dev/null ||
    compgen -G "/usr/lib/x86_64-linux-gnu/cmake/$1/*onfig.cmake" >/dev/null ||
    compgen -G "/usr/local/lib/cmake/$1/*onfig.cmake" >/dev/null || compgen -G "/usr/lib/cmake/$lower/*onfig.cmake" >/dev/null
}
if ! _have_cmake_pkg nlohmann_json || ! _have_cmake_pkg CLI11; then
  if [ -d "$device_deps_root/.devdeps/usr/share/cmake" ]; then
    echo "device_deps: nlohmann_json or CLI11 missing here; using .devdeps/usr"
    _prefixes+=("$device_deps_root/.devdeps/usr")
  else
    echo "device_deps: nlohmann_json or CLI11 missing here and no .devdeps/ carried" >&2
  fi
fi
if ! _have_cmake_pkg GTest && [ ! -f /usr/include/gtest/gtest.h ]; then
  src="$device_deps_root/.devdeps/usr/src/googletest"
  if [ -d "$src" ]; then
    echo "device_deps: GoogleTest missing here; building it from .devdeps into /tmp/gtest-install"
    if [ ! -f /tmp/gtest-install/include/gtest/gtest.h ]; then
      cmake -S "$src" -B /tmp/gtest-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX=/tmp/gtest-install >/tmp/gtest-build.log 2>&1 &&
        cmake --build /tmp/gtest-build -j 16 --target install >>/tmp/gtest-build.log 2>&1 ||
        { tail -20 /tmp/gtest-build.log >&2; }
    fi
    _prefixes+=(/tmp/gtest-install)
  else
    echo "device_deps: GoogleTest missing here and no .devdeps/ carried" >&2
  fi
fi
if [ ${#_prefixes[@]} -gt 0 ]; then
  DEVICE_CMAKE_ARGS+=("-DCMAKE_PREFIX_PATH=$(IFS=';'; echo "${_prefixes[*]}")")
fi

device_configure() {
  cmake -S "$device_deps_root" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 "${DEVICE_CMAKE_ARGS[@]}" >"$2" 2>&1
}
