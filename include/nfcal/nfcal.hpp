// nfcal's whole public API in one include: masked autoregressive flows, their training, the
// devices they run on, and the errors nfcal throws.
#pragma once

#include "nfcal/device.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/matrix.hpp"
#include "nfcal/train.hpp"
#include "nfcal/version.hpp"
