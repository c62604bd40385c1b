// evaluate(): the metrics every calibration run reports, on a test set.
#include "nfcal/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nfcal/error.hpp"
#include "nfcal/train.hpp"

namespace nfcal {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> to_double(const std::vector<float>& values) {
  return {values.begin(), values.end()};
}

std::vector<double> difference(const std::vector<double>& from, const std::vector<double>& to) {
  std::vector<double> out(from.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = to[i] - from[i];
  return out;
}

// The known truth of every test row: as many values as rows, each finite.
void check_true_log_density(const std::vector<double>& truth, std::size_t rows) {
  if (truth.size() != rows) {
    throw DataError("true log density: " + std::to_string(truth.size()) + " values for " +
                    std::to_string(rows) + " test rows");
  }
  for (std::size_t i = 0; i < rows; ++i) {
    if (!std::isfinite(truth[i])) {
      throw DataError("true log density: row " + std::to_string(i) + " is " +
                      std::to_string(truth[i]) + ", not a finite log density");
    }
  }
}

// -log sigmoid(m), without overflow for large |m|.
double softplus_neg(double m) {
  return m > 0 ? std::log1p(std::exp(-m)) : -m + std::log1p(std::exp(m));
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// The classifier metrics: AUC and balanced log-loss of test rows against flow samples.
void classifier_metrics(const CalibratedFlow& model, const Matrix<float>& test, std::uint64_t seed,
                        Evaluation* e) {
  // Flow samples from their noise, which is also their base coordinates for latent input.
  const Matrix<float> noise = Maf::base_noise(test.rows(), model.dim(), seed);
  Matrix<float> flow_rows(test.rows(), test.cols());
  model.flow().inverse(noise.data(), noise.rows(), flow_rows.data());
  const std::vector<float> positive = model.margins(test);
  std::vector<float> negative(flow_rows.rows());
  model.margins(flow_rows.data(), flow_rows.rows(), negative.data(), noise.data());
  e->auc = area_under_curve(positive, negative);
  double loss = 0;
  for (const float m : positive) loss += softplus_neg(m);
  for (const float m : negative) loss += softplus_neg(-m);
  e->log_loss = loss / static_cast<double>(positive.size() + negative.size());
}

}  // namespace

Estimate gap_share(const std::vector<double>& flow, const std::vector<double>& model,
                   const std::vector<double>& truth) {
  const std::size_t n = flow.size();
  if (n == 0 || model.size() != n || truth.size() != n) return {};
  double gained = 0, gap = 0;
  for (std::size_t i = 0; i < n; ++i) {
    gained += model[i] - flow[i];
    gap += truth[i] - flow[i];
  }
  if (!(gap > 0)) return {};
  const double share = gained / gap;
  if (n == 1) return {share, 0.0};

  // Delta method: the share moves with the mean of (model - flow) - share * (truth - flow),
  // divided by the mean gap.
  double squares = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double residual = (model[i] - flow[i]) - share * (truth[i] - flow[i]);
    squares += residual * residual;
  }
  const double rows = static_cast<double>(n);
  return {share, std::sqrt(squares / (rows - 1) / rows) / (gap / rows)};
}

Estimate estimate_mean(const std::vector<double>& values) {
  if (values.empty()) return {};
  const double n = static_cast<double>(values.size());
  double sum = 0;
  for (const double v : values) sum += v;
  const double mean = sum / n;
  double squares = 0;
  for (const double v : values) squares += (v - mean) * (v - mean);
  return {mean, values.size() > 1 ? std::sqrt(squares / (n - 1) / n) : 0.0};
}

double area_under_curve(const std::vector<float>& positives, const std::vector<float>& negatives) {
  if (positives.empty() || negatives.empty()) {
    throw InvalidArgument("area_under_curve: needs positive and negative scores");
  }

  // Mann-Whitney: sort all scores, give ties their average rank, sum the positives' ranks.
  std::vector<std::pair<float, int>> all;
  all.reserve(positives.size() + negatives.size());
  for (const float s : positives) all.emplace_back(s, 1);
  for (const float s : negatives) all.emplace_back(s, 0);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k) rank_sum += all[k].second * average_rank;
    i = j;
  }
  const double np = static_cast<double>(positives.size());
  const double nn = static_cast<double>(negatives.size());
  return (rank_sum - np * (np + 1) / 2) / (np * nn);
}

Evaluation evaluate(const AnyModel& model, const Matrix<float>& test,
                    const EvaluateOptions& options) {
  check_rows(test, model.dim(), "test data");
  const bool truth_known = !options.true_log_density.empty();
  if (truth_known) check_true_log_density(options.true_log_density, test.rows());
  Evaluation e;
  e.test_rows = test.rows();
  e.calibrated = model.is_calibrated();

  // The flow's test log-likelihood, the truth's when it is known, and the calibrated model's
  // with its gain over the flow when there is one (NaN-free: every row is checked).
  const std::vector<double> flow_ll = to_double(model.flow().log_prob(test));
  const Estimate flow = estimate_mean(flow_ll);
  e.flow_log_likelihood = flow.mean;
  e.flow_log_likelihood_se = flow.se;
  e.truth_known = truth_known;
  e.true_log_likelihood = e.true_log_likelihood_se = e.gap_closed = e.gap_closed_se = kNaN;
  if (truth_known) {
    const Estimate truth = estimate_mean(options.true_log_density);
    e.true_log_likelihood = truth.mean;
    e.true_log_likelihood_se = truth.se;
  }
  const CalibratedFlow* calibrated = model.calibrated();
  if (calibrated == nullptr) {
    e.calibrated_log_likelihood = e.flow_log_likelihood;
    e.calibrated_log_likelihood_se = e.flow_log_likelihood_se;
    e.gain = e.gain_se = 0;
    e.auc = e.log_loss = e.log_z = e.log_z_se = e.ceiling = e.ess = kNaN;
    e.acceptance_predicted = e.acceptance_measured = 1.0;
    e.note = "a plain flow: no classifier, every flow sample is a sample";
    return e;
  }
  const std::vector<double> calibrated_ll = to_double(calibrated->log_prob(test));
  const Estimate calibrated_estimate = estimate_mean(calibrated_ll);
  e.calibrated_log_likelihood = calibrated_estimate.mean;
  e.calibrated_log_likelihood_se = calibrated_estimate.se;
  const Estimate gain = estimate_mean(difference(flow_ll, calibrated_ll));
  e.gain = gain.mean;
  e.gain_se = gain.se;
  if (truth_known) {
    const Estimate closed = gap_share(flow_ll, calibrated_ll, options.true_log_density);
    e.gap_closed = closed.mean;
    e.gap_closed_se = closed.se;
  }

  // The classifier, and the numbers that define the calibrated density.
  classifier_metrics(*calibrated, test, options.seed ^ 0xA5A5A5A5A5A5A5A5ull, &e);
  e.log_z = calibrated->log_z();
  e.log_z_se = calibrated->log_z_se();
  e.ceiling = calibrated->exact_sampling() ? calibrated->ceiling() : kNaN;
  e.ess = calibrated->ess();
  e.acceptance_predicted = calibrated->acceptance_predicted();

  // Acceptance measured by sampling for real.
  e.acceptance_measured = kNaN;
  if (options.acceptance_samples > 0) {
    SamplerOptions sampler;
    sampler.seed = options.seed;
    sampler.max_candidates = options.max_candidates;
    SamplerReport report;
    try {
      sample_calibrated(*calibrated, options.acceptance_samples, sampler, &report);
    } catch (const SamplingError& error) {
      e.note = error.what();
    }
    e.acceptance_measured = report.acceptance_measured;
  }
  return e;
}

std::string Evaluation::to_json() const {
  nlohmann::json j;
  j["flow_log_likelihood"] = number_or_null(flow_log_likelihood);
  j["flow_log_likelihood_se"] = number_or_null(flow_log_likelihood_se);
  j["calibrated_log_likelihood"] = number_or_null(calibrated_log_likelihood);
  j["calibrated_log_likelihood_se"] = number_or_null(calibrated_log_likelihood_se);
  j["auc"] = number_or_null(auc);
  j["log_loss"] = number_or_null(log_loss);
  j["log_z"] = number_or_null(log_z);
  j["log_z_se"] = number_or_null(log_z_se);
  j["ceiling"] = number_or_null(ceiling);
  j["acceptance_predicted"] = number_or_null(acceptance_predicted);
  j["acceptance_measured"] = number_or_null(acceptance_measured);
  j["ess"] = number_or_null(ess);
  if (truth_known) {
    j["true_log_likelihood"] = number_or_null(true_log_likelihood);
    j["true_log_likelihood_se"] = number_or_null(true_log_likelihood_se);
    j["gap_closed"] = number_or_null(gap_closed);
    j["gap_closed_se"] = number_or_null(gap_closed_se);
  }
  return j.dump(2);
}

std::string Evaluation::to_table() const {
  std::ostringstream out;
  auto row = [&out](const char* name, double value, double se = kNaN) {
    char text[128];
    if (std::isnan(value)) {
      std::snprintf(text, sizeof(text), "  %-28s %12s\n", name, "-");
    } else if (std::isnan(se)) {
      std::snprintf(text, sizeof(text), "  %-28s %12.4f\n", name, value);
    } else {
      std::snprintf(text, sizeof(text), "  %-28s %12.4f +- %.4f\n", name, value, se);
    }
    out << text;
  };
  out << "evaluation on " << test_rows << " test rows (" << (calibrated ? "calibrated" : "flow")
      << " model)\n";
  row("flow log-likelihood", flow_log_likelihood, flow_log_likelihood_se);
  row("calibrated log-likelihood", calibrated_log_likelihood, calibrated_log_likelihood_se);
  if (calibrated) row("gain (row by row)", gain, gain_se);
  if (truth_known) {
    row("true log-likelihood", true_log_likelihood, true_log_likelihood_se);
    if (calibrated && std::isnan(gap_closed)) {
      row("share of the gap closed", kNaN);  // the flow is not below the truth
    } else if (calibrated) {
      char text[128];
      std::snprintf(text, sizeof(text), "  %-28s %11.1f%% +- %.1f%%\n", "share of the gap closed",
                    100 * gap_closed, 100 * gap_closed_se);
      out << text;
    }
  }
  row("classifier AUC", auc);
  row("classifier log-loss", log_loss);
  row("log Z", log_z, log_z_se);
  row("ceiling L", ceiling);
  row("L - log Z", ceiling - log_z);
  row("acceptance predicted", acceptance_predicted);
  row("acceptance measured", acceptance_measured);
  row("effective sample size", ess);
  if (!note.empty()) out << "  note: " << note << "\n";
  return out.str();
}

ExactRatioReference exact_ratio_reference(const Maf& flow, const LogDensityFunction& log_density,
                                          const Matrix<float>& test, double ceiling,
                                          std::size_t samples, std::uint64_t seed) {
  check_rows(test, flow.dim(), "test data");
  if (!log_density) throw InvalidArgument("exact_ratio_reference: no log density given");
  if (samples == 0) throw InvalidArgument("exact_ratio_reference: samples must be positive");

  // The exact log ratio as a classifier of the rows alone.
  const auto exact_log_ratio = [&flow, &log_density](const float* x, std::size_t n, int dim,
                                                     float* out) {
    Matrix<double> rows(n, static_cast<std::size_t>(dim));
    std::copy(x, x + rows.size(), rows.data());
    const std::vector<double> truth = log_density(rows);
    if (truth.size() != n) {
      throw InvalidArgument("exact_ratio_reference: the log density returned " +
                            std::to_string(truth.size()) + " values for " + std::to_string(n) +
                            " rows");
    }
    std::vector<float> model(n);
    flow.log_prob(x, n, model.data());
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(truth[i] - model[i]);
  };
  const auto classifier = std::make_shared<CallbackClassifier>(flow.dim(), exact_log_ratio, 0.0,
                                                               "exact log density ratio");

  // Normalized like any calibrated model; without a ceiling the largest sampled ratio bounds
  // the (unused) sampler.
  const LogZEstimate z = estimate_flow_log_z(flow, *classifier, ceiling, samples, seed);
  if (!std::isfinite(z.log_z)) {
    throw InvalidArgument("exact_ratio_reference: log Z is " + std::to_string(z.log_z) +
                          ": no flow sample of " + std::to_string(samples) +
                          " lands where the known density is positive");
  }
  const CalibratedFlow reference(flow, classifier, ceiling, z, z.max_margin);

  ExactRatioReference result;
  const std::vector<float> log_prob = reference.log_prob(test);
  result.log_prob.assign(log_prob.begin(), log_prob.end());
  const Estimate likelihood = estimate_mean(result.log_prob);
  result.log_likelihood = likelihood.mean;
  result.log_likelihood_se = likelihood.se;
  result.log_z = z.log_z;
  result.log_z_se = z.se;
  return result;
}

}  // namespace nfcal
