# Finds cuSPARSELt (header cusparseLt.h, library libcusparseLt.so.0 as the PyPI wheel ships it,
# with no unversioned link). Search order: -DCUSPARSELT_ROOT / $CUSPARSELT_ROOT, the project-local
# wheel install (.deps/cusparselt), the `nvidia.cusparselt` package of the python3 on PATH, then
# /opt/torch/.venv (the GPU machine). Defines CUSPARSELT_FOUND and the target CUSPARSELT::cusparselt.

set(_cusparselt_hints "")
if(CUSPARSELT_ROOT)
  list(APPEND _cusparselt_hints "${CUSPARSELT_ROOT}")
endif()
if(DEFINED ENV{CUSPARSELT_ROOT})
  list(APPEND _cusparselt_hints "$ENV{CUSPARSELT_ROOT}")
endif()
file(GLOB _cusparselt_local "${PROJECT_SOURCE_DIR}/.deps/cusparselt/nvidia/cusparselt")
list(APPEND _cusparselt_hints ${_cusparselt_local})
find_program(_cusparselt_python NAMES python3 python)
if(_cusparselt_python)
  execute_process(
    COMMAND "${_cusparselt_python}" -c
            "import importlib.util as u; s = u.find_spec('nvidia.cusparselt'); print(list(s.submodule_search_locations)[0] if s else '')"
    OUTPUT_VARIABLE _cusparselt_py_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_cusparselt_py_dir)
    list(APPEND _cusparselt_hints "${_cusparselt_py_dir}")
  endif()
endif()
file(GLOB _cusparselt_venv "/opt/torch/.venv/lib/python3*/site-packages/nvidia/cusparselt")
list(APPEND _cusparselt_hints ${_cusparselt_venv})

find_path(CUSPARSELT_INCLUDE_DIR cusparseLt.h HINTS ${_cusparselt_hints} PATH_SUFFIXES include)
find_library(CUSPARSELT_LIBRARY NAMES cusparseLt libcusparseLt.so.0
             HINTS ${_cusparselt_hints} PATH_SUFFIXES lib lib64)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUSPARSELT REQUIRED_VARS CUSPARSELT_LIBRARY CUSPARSELT_INCLUDE_DIR)

if(CUSPARSELT_FOUND AND NOT TARGET CUSPARSELT::cusparselt)
  add_library(CUSPARSELT::cusparselt SHARED IMPORTED)
  set_target_properties(CUSPARSELT::cusparselt PROPERTIES
    IMPORTED_LOCATION "${CUSPARSELT_LIBRARY}"
    IMPORTED_NO_SONAME FALSE
    INTERFACE_INCLUDE_DIRECTORIES "${CUSPARSELT_INCLUDE_DIR}")
endif()
