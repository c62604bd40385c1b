// Monte Carlo statistics of calibration: log Z with its standard error and effective sample
// size, and the held-out gain that tree selection and the ceiling choice maximize.
#include <algorithm>
#include <cmath>
#include <limits>

#include "nfcal/classifier.hpp"
#include "nfcal/error.hpp"

#include "common/accept.hpp"

namespace nfcal {

LogZEstimate estimate_log_z(const float* margins, std::size_t n, double ceiling) {
  // No samples means no estimate at all; refuse rather than return log 0.
  if (n == 0) throw InvalidArgument("estimate_log_z: no flow samples to estimate log Z from");
  check_margins(margins, n, "classifier");

  // One pass of a streaming log-sum-exp over the clipped margins.
  calib::LogSumExp acc;
  double max_margin = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    const double m = margins[i];
    max_margin = std::max(max_margin, m);
    acc.add(std::min(m, ceiling));
  }

  LogZEstimate estimate;
  estimate.log_z = acc.log_mean_exp();
  estimate.se = acc.log_mean_exp_se();
  estimate.ess = acc.effective_sample_size();
  estimate.samples = n;
  estimate.max_margin = max_margin;
  return estimate;
}

double heldout_gain(const std::vector<float>& data_margins, const std::vector<float>& flow_margins,
                    double ceiling) {
  if (data_margins.empty() || flow_margins.empty()) {
    throw InvalidArgument("heldout_gain: needs held-out data rows and held-out flow rows");
  }

  // Mean clipped margin on data: the calibrated log-likelihood before normalization.
  double sum = 0;
  for (const float m : data_margins) sum += std::min(static_cast<double>(m), ceiling);
  const double mean = sum / static_cast<double>(data_margins.size());

  // Minus log Z_L on held-out flow rows: the normalization.
  const LogZEstimate z = estimate_log_z(flow_margins.data(), flow_margins.size(), ceiling);
  return mean - z.log_z;
}

}  // namespace nfcal
