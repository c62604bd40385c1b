# Finds the XGBoost C API that scripts/setup.sh unpacks from PyPI, in the wheel's layout:
#   include/xgboost/c_api.h      from the source distribution
#   xgboost/lib/libxgboost.so    from the wheel, beside ...
#   xgboost.libs/                ... the OpenMP runtime it finds through its own rpath
#   VERSION                      the version setup.sh installed
# Looked for in NFCAL_XGBOOST_ROOT (the CMake cache variable), then in the environment
# variable of the same name. Defines the imported target xgboost::xgboost and
# XGBOOST_ROOT, XGBOOST_LIBRARY_DIR, XGBoost_VERSION (when the VERSION file is there).

set(_nfcal_xgboost_roots "${NFCAL_XGBOOST_ROOT}")
if(DEFINED ENV{NFCAL_XGBOOST_ROOT} AND NOT "$ENV{NFCAL_XGBOOST_ROOT}" STREQUAL "")
  list(APPEND _nfcal_xgboost_roots "$ENV{NFCAL_XGBOOST_ROOT}")
endif()
list(TRANSFORM _nfcal_xgboost_roots APPEND "/include" OUTPUT_VARIABLE _nfcal_xgboost_includes)
list(TRANSFORM _nfcal_xgboost_roots APPEND "/xgboost/lib" OUTPUT_VARIABLE _nfcal_xgboost_libs)

find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h HINTS ${_nfcal_xgboost_includes} NO_DEFAULT_PATH)
find_library(XGBOOST_LIBRARY NAMES xgboost HINTS ${_nfcal_xgboost_libs} NO_DEFAULT_PATH)

if(XGBOOST_LIBRARY)
  get_filename_component(XGBOOST_LIBRARY_DIR "${XGBOOST_LIBRARY}" DIRECTORY)
  get_filename_component(XGBOOST_ROOT "${XGBOOST_LIBRARY_DIR}/../.." ABSOLUTE)
  if(EXISTS "${XGBOOST_ROOT}/VERSION")
    file(STRINGS "${XGBOOST_ROOT}/VERSION" XGBoost_VERSION LIMIT_COUNT 1)
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(XGBoost
  REQUIRED_VARS XGBOOST_LIBRARY XGBOOST_INCLUDE_DIR
  VERSION_VAR XGBoost_VERSION
  REASON_FAILURE_MESSAGE
    "run scripts/setup.sh, or point NFCAL_XGBOOST_ROOT at a folder laid out as it makes one")

if(XGBoost_FOUND AND NOT TARGET xgboost::xgboost)
  add_library(xgboost::xgboost SHARED IMPORTED)
  set_target_properties(xgboost::xgboost PROPERTIES
    IMPORTED_LOCATION "${XGBOOST_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${XGBOOST_INCLUDE_DIR}")
endif()
mark_as_advanced(XGBOOST_INCLUDE_DIR XGBOOST_LIBRARY)
unset(_nfcal_xgboost_roots)
unset(_nfcal_xgboost_includes)
unset(_nfcal_xgboost_libs)
