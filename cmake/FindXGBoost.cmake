# Finds the XGBoost C API that scripts/setup.sh unpacks from PyPI into NFCAL_XGBOOST_ROOT:
#   include/xgboost/c_api.h      from the source distribution
#   xgboost/lib/libxgboost.so    from the wheel, beside ...
#   xgboost.libs/                ... the OpenMP runtime it finds through its own rpath
# Defines the imported target xgboost::xgboost and XGBOOST_ROOT, XGBOOST_LIBRARY_DIR.

find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h
          HINTS "${NFCAL_XGBOOST_ROOT}/include" NO_DEFAULT_PATH)
find_library(XGBOOST_LIBRARY NAMES xgboost
             HINTS "${NFCAL_XGBOOST_ROOT}/xgboost/lib" NO_DEFAULT_PATH)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(XGBoost
  REQUIRED_VARS XGBOOST_LIBRARY XGBOOST_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "run scripts/setup.sh, or point NFCAL_XGBOOST_ROOT at its output")

if(XGBoost_FOUND AND NOT TARGET xgboost::xgboost)
  get_filename_component(XGBOOST_LIBRARY_DIR "${XGBOOST_LIBRARY}" DIRECTORY)
  get_filename_component(XGBOOST_ROOT "${XGBOOST_LIBRARY_DIR}/../.." ABSOLUTE)
  add_library(xgboost::xgboost SHARED IMPORTED)
  set_target_properties(xgboost::xgboost PROPERTIES
    IMPORTED_LOCATION "${XGBOOST_LIBRARY}"
    IMPORTED_NO_SONAME OFF
    INTERFACE_INCLUDE_DIRECTORIES "${XGBOOST_INCLUDE_DIR}")
endif()
