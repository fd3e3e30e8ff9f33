# Run at every build (cmake -P, target ss_build_info): writes OUT with a hash of the sources that
# decide what a benchmark measures (src/, include/, cmake/, models/, CMakeLists.txt), rewriting it
# only when the hash changes, so an unchanged tree recompiles nothing. No git needed: the device
# machine gets a copy of the working tree without .git.
cmake_minimum_required(VERSION 3.25)
file(GLOB_RECURSE files RELATIVE "${SRC_DIR}" LIST_DIRECTORIES false
     "${SRC_DIR}/src/*" "${SRC_DIR}/include/*" "${SRC_DIR}/cmake/*" "${SRC_DIR}/models/*")
list(APPEND files CMakeLists.txt)
list(SORT files)
set(listing "")
foreach(f IN LISTS files)
  file(SHA256 "${SRC_DIR}/${f}" digest)
  string(APPEND listing "${f} ${digest}\n")
endforeach()
string(SHA256 tree "${listing}")
string(SUBSTRING "${tree}" 0 12 tree)
set(content "// Generated at build time by cmake/build_info.cmake: do not edit.\n#pragma once\n#define SLIDESPARSE_SOURCE_HASH \"${tree}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()
