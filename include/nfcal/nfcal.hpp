// nfcal's whole public API in one include: masked autoregressive flows and their training,
// calibration classifiers, data files, model files, devices, and the errors nfcal throws.
#pragma once

#include "nfcal/atomic_file.hpp"
#include "nfcal/classifier.hpp"
#include "nfcal/csv.hpp"
#include "nfcal/device.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/npy.hpp"
#include "nfcal/train.hpp"
#include "nfcal/version.hpp"
#include "nfcal/xgboost_classifier.hpp"
