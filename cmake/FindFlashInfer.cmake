# Finds FlashInfer's header-only attention kernels as scripts/install_deps.sh extracts them from
# the flashinfer-python 0.7.2.post1 wheel: <root>/include/flashinfer/... and the wheel's own CCCL
# libcudacxx at <root>/cccl/libcudacxx/include. Root: -DFLASHINFER_ROOT, $FLASHINFER_ROOT, or the
# project-local .deps/flashinfer. Defines FlashInfer_FOUND, FlashInfer_VERSION,
# FlashInfer_INCLUDE_DIR, FlashInfer_CCCL_INCLUDE_DIR and the INTERFACE target FlashInfer::headers
# (for a target whose every TU may see FlashInfer's CCCL; the build gives the two folders only to
# the TUs that compile FlashInfer, see CMakeLists.txt). Its CCCL comes first and as a plain -I
# (not -isystem): nvcc puts CUDA 13.0's own CCCL 3.0 on -isystem, and FlashInfer needs the newer
# one (cuda::fast_mod_div). FlashInfer's own headers are -isystem (their warnings are not ours).

set(_flashinfer_root "")
if(FLASHINFER_ROOT)
  set(_flashinfer_root "${FLASHINFER_ROOT}")
elseif(DEFINED ENV{FLASHINFER_ROOT})
  set(_flashinfer_root "$ENV{FLASHINFER_ROOT}")
else()
  set(_flashinfer_root "${PROJECT_SOURCE_DIR}/.deps/flashinfer")
endif()

set(FlashInfer_INCLUDE_DIR "${_flashinfer_root}/include")
set(FlashInfer_CCCL_INCLUDE_DIR "${_flashinfer_root}/cccl/libcudacxx/include")
set(FlashInfer_VERSION "")
if(EXISTS "${_flashinfer_root}/VERSION")
  file(STRINGS "${_flashinfer_root}/VERSION" FlashInfer_VERSION LIMIT_COUNT 1)
endif()

if(EXISTS "${FlashInfer_INCLUDE_DIR}/flashinfer/attention/prefill.cuh"
   AND EXISTS "${FlashInfer_CCCL_INCLUDE_DIR}/cuda/__cmath/fast_modulo_division.h")
  set(FlashInfer_FOUND TRUE)
else()
  set(FlashInfer_FOUND FALSE)
  set(_flashinfer_message
      "FlashInfer headers not found in ${_flashinfer_root}: run scripts/install_deps.sh (or set -DFLASHINFER_ROOT)")
  if(FlashInfer_FIND_REQUIRED)
    message(FATAL_ERROR "${_flashinfer_message}")
  elseif(NOT FlashInfer_FIND_QUIETLY)
    message(STATUS "${_flashinfer_message}")
  endif()
  return()
endif()
if(NOT FlashInfer_FIND_QUIETLY)
  message(STATUS "SlideSparse: FlashInfer ${FlashInfer_VERSION} headers in ${_flashinfer_root}")
endif()

if(NOT TARGET FlashInfer::headers)
  add_library(FlashInfer::headers INTERFACE IMPORTED)
  set_target_properties(FlashInfer::headers PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${FlashInfer_CCCL_INCLUDE_DIR};${FlashInfer_INCLUDE_DIR}"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${FlashInfer_INCLUDE_DIR}"
    SYSTEM FALSE)
endif()
