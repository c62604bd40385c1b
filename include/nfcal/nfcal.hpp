// nfcal's whole public API in one include: masked autoregressive flows and their training,
// calibration (classifiers, the calibrated flow, its rejection sampler and evaluation), data
// files and built-in datasets, model files, devices, and the errors nfcal throws.
#pragma once

#include "nfcal/atomic_file.hpp"
#include "nfcal/calibrated_flow.hpp"
#include "nfcal/classifier.hpp"
#include "nfcal/compute.hpp"
#include "nfcal/csv.hpp"
#include "nfcal/cuda.hpp"
#include "nfcal/datasets.hpp"
#include "nfcal/device.hpp"
#include "nfcal/error.hpp"
#include "nfcal/evaluate.hpp"
#include "nfcal/image_data.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/npy.hpp"
#include "nfcal/rejection_sampler.hpp"
#include "nfcal/train.hpp"
#include "nfcal/uci_data.hpp"
#include "nfcal/version.hpp"
#include "nfcal/xgboost_classifier.hpp"
