// calibrate(): flow samples, the classifier with held-out tree selection, the ceiling, and log Z.
//
// Every choice is made on held-out rows with the gain in calibrated log-likelihood
//     G(L) = mean_{held-out data} min(m, L) - log mean_{held-out flow} exp(min(m, L)),
// which needs only margins: the flow's own log density cancels between the flow and the
// calibrated model. The number of trees maximizes G at the ceiling the mode prescribes (for
// auto: the best grid ceiling at that number of trees), then log Z_L is estimated on fresh
// flow samples that took no part in training.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/compute.hpp"
#include "nfcal/error.hpp"
#include "nfcal/train.hpp"
#include "nfcal/version.hpp"

namespace nfcal {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kInf = std::numeric_limits<double>::infinity();
// Below this predicted acceptance the summary warns: a thousand candidates per sample.
constexpr double kLowAcceptance = 1e-3;
// Below this many held-out data rows the summary warns: the trees, the ceiling and the
// held-out gain are chosen and measured on too few rows to trust.
constexpr std::size_t kFewHeldOutRows = 100;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// An independent seed for each use of the calibration seed (splitmix64 finalizer).
std::uint64_t derived_seed(std::uint64_t seed, std::uint64_t purpose) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (purpose + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The grid ceiling with the best held-out gain among those predicted to accept at least
// min_acceptance (the smallest grid value when none does): (L, gain).
std::pair<double, double> best_grid_ceiling(const std::vector<float>& data,
                                            const std::vector<float>& flow,
                                            const std::vector<double>& grid, double min_acceptance,
                                            std::vector<std::pair<double, double>>* gains) {
  std::pair<double, double> best{kInf, -kInf};
  for (const double ceiling : grid) {
    const double gain = heldout_gain(data, flow, ceiling);
    if (gains != nullptr) gains->emplace_back(ceiling, gain);
    const double log_z = estimate_log_z(flow.data(), flow.size(), ceiling).log_z;
    if (std::exp(log_z - ceiling) < min_acceptance) continue;
    if (gain > best.second) best = {ceiling, gain};
  }
  if (!std::isinf(best.first) || min_acceptance <= 0) return best;

  // No grid value accepts often enough: the flow is far from the data (a classifier that
  // tells them apart almost surely), and only a ceiling below the grid, possibly negative,
  // keeps sampling affordable. The largest such ceiling is the one at the minimum rate.
  const double ceiling = ceiling_for_acceptance(flow, min_acceptance);
  best = {ceiling, heldout_gain(data, flow, ceiling)};
  if (gains != nullptr) gains->emplace_back(best);
  return best;
}

// The held-out criterion the number of trees maximizes, for the chosen ceiling mode.
SelectionScore selection_score(const CalibrationOptions& options) {
  const CeilingChoice choice = options.ceiling;
  switch (choice.mode) {
    case CeilingChoice::Mode::kValue:
      return [choice](const std::vector<float>& d, const std::vector<float>& f) {
        return heldout_gain(d, f, choice.value);
      };
    case CeilingChoice::Mode::kNone:
      return [](const std::vector<float>& d, const std::vector<float>& f) {
        return heldout_gain(d, f, kInf);
      };
    case CeilingChoice::Mode::kTargetAcceptance:
      return [choice](const std::vector<float>& d, const std::vector<float>& f) {
        return heldout_gain(d, f, ceiling_for_acceptance(f, choice.value));
      };
    case CeilingChoice::Mode::kAuto:
      break;
  }
  const std::vector<double> grid = options.ceiling_grid;
  const double min_acceptance = options.auto_min_acceptance;
  return [grid, min_acceptance](const std::vector<float>& d, const std::vector<float>& f) {
    return best_grid_ceiling(d, f, grid, min_acceptance, nullptr).second;
  };
}

// Standard error of the held-out gain: the data term's and log Z's, as independent parts.
double heldout_gain_se(const std::vector<float>& data, const std::vector<float>& flow,
                       double ceiling) {
  double sum = 0, sum_sq = 0;
  for (const float m : data) {
    const double c = std::min(static_cast<double>(m), ceiling);
    sum += c;
    sum_sq += c * c;
  }
  const double n = static_cast<double>(data.size());
  const double variance = n > 1 ? std::max(0.0, (sum_sq - sum * sum / n) / (n - 1)) : 0.0;
  const double z_se = estimate_log_z(flow.data(), flow.size(), ceiling).se;
  return std::sqrt(variance / n + z_se * z_se);
}

// The first `count` columns of every row: the data part of classifier rows.
Matrix<float> leading_columns(const Matrix<float>& rows, int count) {
  const auto width = static_cast<std::size_t>(count);
  if (rows.cols() == width) return rows;
  Matrix<float> out(rows.rows(), width);
  for (std::size_t i = 0; i < rows.rows(); ++i) {
    std::copy(rows.row(i), rows.row(i) + width, out.row(i));
  }
  return out;
}

// Mean of a vector in double.
double mean_of(const std::vector<float>& v) {
  double sum = 0;
  for (const float x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

std::string format_ceiling(double ceiling) {
  if (std::isinf(ceiling)) return "none";
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", ceiling);
  return text;
}

}  // namespace

// --- Options ---------------------------------------------------------------------------------

CeilingChoice CeilingChoice::parse(const std::string& text) {
  if (text == "auto") return automatic();
  if (text == "none" || text == "inf") return none();
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value)) {
    throw InvalidArgument("ceiling '" + text + "': expected a number of nats, auto or none");
  }
  return fixed(value);
}

std::string CeilingChoice::to_string() const {
  switch (mode) {
    case Mode::kValue:
      return format_ceiling(value);
    case Mode::kAuto:
      return "auto";
    case Mode::kNone:
      return "none";
    case Mode::kTargetAcceptance:
      return "target acceptance " + format_ceiling(value);
  }
  return "?";
}

void CalibrationOptions::validate() const {
  classifier.validate();
  if (classifier.validation_fraction <= 0) {
    throw InvalidArgument("calibration needs held-out rows: classifier validation_fraction > 0");
  }
  if (!(flow_ratio > 0 && flow_ratio <= kMaxFlowRatio)) {
    throw InvalidArgument("flow_ratio must be positive and at most " +
                          fmt::format("{:g}", kMaxFlowRatio) + ", got " +
                          fmt::format("{:g}", flow_ratio));
  }
  if (ceiling.mode == CeilingChoice::Mode::kValue && !std::isfinite(ceiling.value)) {
    throw InvalidArgument("ceiling must be a finite number of nats (or auto, or none)");
  }
  if (ceiling.mode == CeilingChoice::Mode::kTargetAcceptance &&
      !(ceiling.value > 0 && ceiling.value <= 1)) {
    throw InvalidArgument("target acceptance must be in (0, 1]");
  }
  if (ceiling.mode == CeilingChoice::Mode::kAuto) {
    if (ceiling_grid.empty()) throw InvalidArgument("ceiling_grid is empty");
    for (const double c : ceiling_grid) {
      if (!std::isfinite(c)) throw InvalidArgument("ceiling_grid values must be finite");
    }
  }
  if (!(auto_min_acceptance >= 0 && auto_min_acceptance <= 1)) {
    throw InvalidArgument("auto_min_acceptance must be in [0, 1]");
  }
  if (!(bound_slack >= 0 && std::isfinite(bound_slack))) {
    throw InvalidArgument("bound_slack must be a finite number >= 0");
  }
  if (log_z_samples == 1) {
    throw InvalidArgument("log_z_samples must be 0 (the device's default) or at least 2");
  }
}

std::size_t CalibrationOptions::resolved_log_z_samples() const {
  if (log_z_samples > 0) return log_z_samples;
  return device.is_cuda() ? 1000000 : 100000;
}

// --- Statistics ------------------------------------------------------------------------------

double ceiling_for_acceptance(const std::vector<float>& margins, double rate) {
  if (margins.empty()) throw InvalidArgument("ceiling_for_acceptance: no margins");
  if (!(rate > 0 && rate <= 1)) throw InvalidArgument("target acceptance must be in (0, 1]");

  // Sorted margins, shifted by the largest so every exp() is at most 1.
  std::vector<double> m(margins.begin(), margins.end());
  std::sort(m.begin(), m.end());
  const double top = m.back();
  const double n = static_cast<double>(m.size());

  // Acceptance at L = m[k] is (S_k exp(-m[k]) + (N - k)) / N with S_k the sum of exp(m[i])
  // below k; it falls as k grows. Find the last breakpoint still at or above the rate.
  double below = 0;  // S_k, shifted by top
  std::size_t k = 0;
  for (; k < m.size(); ++k) {
    const double acceptance = (below / std::exp(m[k] - top) + (n - static_cast<double>(k))) / n;
    if (acceptance < rate) break;
    below += std::exp(m[k] - top);
  }

  // Between breakpoints acceptance is (S exp(-L) + N - k) / N: solve it for L.
  const double rest = n * rate - (n - static_cast<double>(k));
  if (k == 0) return m.front();
  return top + std::log(below / rest);
}

LogZEstimate estimate_flow_log_z(const Maf& flow, const Classifier& classifier, double ceiling,
                                 std::size_t samples, std::uint64_t seed, ClassifierInput input) {
  const std::vector<float> m =
      classifier.margins(classifier_features_of_samples(input, flow.sample(samples, seed), seed));
  return estimate_log_z(m.data(), m.size(), ceiling);
}

std::string CalibrationReport::summary() const {
  std::ostringstream out;
  char line[256];
  const std::string forest =
      classifier.trees_per_round > 1
          ? " rounds of " + std::to_string(classifier.trees_per_round) + " averaged trees"
          : " trees";
  std::snprintf(line, sizeof(line), "classifier: XGBoost on %s, kept %d of %d%s%s%s (%.1f s)\n",
                to_string(classifier_input).c_str(), classifier.trees_kept,
                classifier.trees_trained, forest.c_str(),
                classifier.stopped_early ? ", stopped early" : "",
                classifier.refit ? ", refit on all rows" : "", seconds_classifier);
  out << line;
  if (flow_unchanged) {
    std::snprintf(line, sizeof(line),
                  "held-out log-likelihood: flow %.4f; the classifier's best gain %+.4f +- %.4f "
                  "nats, so the model keeps the flow's density\n",
                  heldout_flow_log_likelihood, heldout_gain, heldout_gain_se);
  } else {
    std::snprintf(line, sizeof(line),
                  "held-out log-likelihood: flow %.4f, calibrated %.4f, gain %+.4f +- %.4f nats\n",
                  heldout_flow_log_likelihood, heldout_calibrated_log_likelihood, heldout_gain,
                  heldout_gain_se);
  }
  out << line;
  std::snprintf(line, sizeof(line),
                "ceiling %s, log Z %.4f +- %.4f, ESS %.0f of %zu, predicted acceptance %.4f\n",
                format_ceiling(ceiling).c_str(), log_z.log_z, log_z.se, log_z.ess, log_z.samples,
                acceptance_predicted);
  out << line;
  if (!exact_sampling) {
    out << "no ceiling: the sampling bound is a sampled maximum, so sampling is approximate\n";
  }
  for (const std::string& warning : warnings()) out << "warning: " << warning << "\n";
  return out.str();
}

std::string CalibrationReport::to_json() const {
  const auto finite_or_null = [](double value) {
    return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  };
  nlohmann::json gains = nlohmann::json::array();
  for (const auto& [grid_ceiling, gain] : ceiling_gains) {
    gains.push_back({{"ceiling", grid_ceiling}, {"heldout_gain", finite_or_null(gain)}});
  }
  const nlohmann::json j = {
      {"classifier",
       {{"input", to_string(classifier_input)},
        {"trees_trained", classifier.trees_trained},
        {"trees_kept", classifier.trees_kept},
        {"trees_per_round", classifier.trees_per_round},
        {"stopped_early", classifier.stopped_early},
        {"refit", classifier.refit},
        {"train_data_rows", classifier.train_data_rows},
        {"train_flow_rows", classifier.train_flow_rows},
        {"heldout_data_rows", classifier.heldout_data_rows},
        {"heldout_flow_rows", classifier.heldout_flow_rows}}},
      {"ceiling", finite_or_null(ceiling)},
      {"ceiling_gains", gains},
      {"heldout_flow_log_likelihood", finite_or_null(heldout_flow_log_likelihood)},
      {"heldout_calibrated_log_likelihood", finite_or_null(heldout_calibrated_log_likelihood)},
      {"heldout_gain", finite_or_null(heldout_gain)},
      {"heldout_gain_se", finite_or_null(heldout_gain_se)},
      {"improved", improved},
      {"flow_unchanged", flow_unchanged},
      {"log_z", finite_or_null(log_z.log_z)},
      {"log_z_se", finite_or_null(log_z.se)},
      {"ess", finite_or_null(log_z.ess)},
      {"log_z_samples", log_z.samples},
      {"acceptance_predicted", finite_or_null(acceptance_predicted)},
      {"exact_sampling", exact_sampling},
      {"seconds",
       {{"flow_samples", seconds_flow_samples},
        {"classifier", seconds_classifier},
        {"log_z", seconds_log_z}}},
      {"warnings", warnings()}};
  return j.dump(2);
}

std::vector<std::string> CalibrationReport::warnings() const {
  std::vector<std::string> out;
  char line[256];
  if (flow_unchanged) {
    std::snprintf(line, sizeof(line),
                  "calibration brought no gain on held-out rows (%.4f +- %.4f nats per row); "
                  "the ceiling lies below every margin, so the model scores and samples as "
                  "the flow does",
                  heldout_gain, heldout_gain_se);
    out.emplace_back(line);
  } else if (!improved) {
    std::snprintf(line, sizeof(line),
                  "calibration brought no gain on held-out rows (%.4f +- %.4f nats per row); "
                  "the flow alone scores at least as well",
                  heldout_gain, heldout_gain_se);
    out.emplace_back(line);
  } else if (heldout_gain < 2 * heldout_gain_se) {
    std::snprintf(line, sizeof(line),
                  "the held-out gain (%.4f +- %.4f nats per row) is within two standard errors "
                  "of zero; calibration may not improve on the flow for new rows",
                  heldout_gain, heldout_gain_se);
    out.emplace_back(line);
  }
  if (classifier.heldout_data_rows < kFewHeldOutRows) {
    std::snprintf(line, sizeof(line),
                  "only %zu data rows were held out to choose the trees and the ceiling; below "
                  "%zu that choice and the held-out gain are unreliable: calibrate on more rows "
                  "or raise the validation fraction",
                  classifier.heldout_data_rows, kFewHeldOutRows);
    out.emplace_back(line);
  }
  if (acceptance_predicted < kLowAcceptance) {
    std::snprintf(line, sizeof(line),
                  "the rejection sampler would accept %.3g of its candidates; a lower ceiling "
                  "or a target acceptance makes sampling affordable",
                  acceptance_predicted);
    out.emplace_back(line);
  }
  return out;
}

// --- calibrate() -----------------------------------------------------------------------------

CalibratedFlow calibrate(const Maf& flow, const Matrix<float>& data,
                         const CalibrationOptions& options, CalibrationReport* report,
                         const Matrix<float>* validation) {
  options.validate();
  check_rows(data, flow.dim(), "calibration data");
  if (validation != nullptr) check_rows(*validation, flow.dim(), "calibration validation data");
  CalibrationReport local;
  CalibrationReport& r = report != nullptr ? *report : local;
  r = CalibrationReport{};

  // Flow samples to tell the data from: flow_ratio of them per data row.
  auto t = Clock::now();
  const auto flow_rows_count = std::max<std::size_t>(
      2, static_cast<std::size_t>(
             std::llround(options.flow_ratio * static_cast<double>(data.rows()))));

  // What the classifier sees of both sides: the rows, and for latent input their base
  // coordinates (the data's through the flow, the samples' from the noise they came from).
  const ClassifierInput input = options.classifier_input;
  r.classifier_input = input;
  const std::uint64_t flow_seed = derived_seed(options.seed, 1);
  Matrix<float> flow_features = classifier_features_of_samples(
      input, sample(flow, flow_rows_count, flow_seed, options.device), flow_seed);
  r.seconds_flow_samples = seconds_since(t);
  Matrix<float> latent_data;
  if (input == ClassifierInput::kDataAndLatent) {
    latent_data = classifier_features_of_rows(input, flow, data.data(), data.rows());
  }
  const Matrix<float>& data_features = latent_data.rows() > 0 ? latent_data : data;

  // Given validation rows are held out against flow rows of their own, drawn like the others.
  Matrix<float> validation_features, validation_flow_features;
  HeldOutRows heldout;
  if (validation != nullptr) {
    const auto count = std::max<std::size_t>(
        1, static_cast<std::size_t>(
               std::llround(options.flow_ratio * static_cast<double>(validation->rows()))));
    const std::uint64_t seed = derived_seed(options.seed, 3);
    validation_flow_features =
        classifier_features_of_samples(input, sample(flow, count, seed, options.device), seed);
    validation_features =
        classifier_features_of_rows(input, flow, validation->data(), validation->rows());
    heldout = {&validation_features, &validation_flow_features};
  }

  // The classifier, its number of trees chosen on held-out rows. Wide rows cost gigabytes,
  // so the flow's go as soon as XGBoost holds its own copy.
  t = Clock::now();
  auto classifier = std::make_shared<XGBoostClassifier>(XGBoostClassifier::train(
      data_features, flow_features, options.classifier, selection_score(options), &r.classifier,
      options.on_classifier_round, heldout));
  flow_features = Matrix<float>();
  latent_data = Matrix<float>();
  validation_features = Matrix<float>();
  validation_flow_features = Matrix<float>();
  r.seconds_classifier = seconds_since(t);
  const std::vector<float>& data_m = r.classifier.heldout_data_margins;
  const std::vector<float>& flow_m = r.classifier.heldout_flow_margins;

  // Fresh flow samples for log Z; for a target acceptance they also place the ceiling.
  t = Clock::now();
  const std::uint64_t z_seed = derived_seed(options.seed, 2);
  const std::vector<float> z_margins = classifier->margins(classifier_features_of_samples(
      input, sample(flow, options.resolved_log_z_samples(), z_seed, options.device), z_seed));
  double ceiling = kInf;
  switch (options.ceiling.mode) {
    case CeilingChoice::Mode::kValue:
      ceiling = options.ceiling.value;
      break;
    case CeilingChoice::Mode::kNone:
      break;
    case CeilingChoice::Mode::kTargetAcceptance:
      ceiling = ceiling_for_acceptance(z_margins, options.ceiling.value);
      break;
    case CeilingChoice::Mode::kAuto:
      ceiling = best_grid_ceiling(data_m, flow_m, options.ceiling_grid, options.auto_min_acceptance,
                                  &r.ceiling_gains)
                    .first;
      break;
  }
  // Held-out report: the flow's own log-likelihood and what calibration adds to it.
  r.heldout_flow_log_likelihood =
      mean_of(flow.log_prob(leading_columns(r.classifier.heldout_data, flow.dim())));
  r.heldout_gain = heldout_gain(data_m, flow_m, ceiling);
  r.heldout_gain_se = heldout_gain_se(data_m, flow_m, ceiling);
  r.improved = r.heldout_gain > 0;
  r.heldout_calibrated_log_likelihood = r.heldout_flow_log_likelihood + r.heldout_gain;

  // A classifier that found nothing on held-out rows would only cost likelihood: auto keeps
  // the flow instead, with a ceiling below every margin the trees can give, so min(m, L) = L
  // everywhere, log Z = L and every candidate is accepted.
  if (options.ceiling.mode == CeilingChoice::Mode::kAuto && !r.improved) {
    ceiling = classifier->margin_lower_bound();
    r.flow_unchanged = true;
    r.heldout_calibrated_log_likelihood = r.heldout_flow_log_likelihood;
  }
  r.log_z = estimate_log_z(z_margins.data(), z_margins.size(), ceiling);
  const double bound = std::isfinite(ceiling) ? ceiling : r.log_z.max_margin + options.bound_slack;
  r.seconds_log_z = seconds_since(t);
  r.ceiling = ceiling;
  r.exact_sampling = std::isfinite(ceiling);
  r.acceptance_predicted = std::min(1.0, std::exp(r.log_z.log_z - bound));

  // Training metadata that travels with the model.
  nlohmann::json meta;
  meta["data_rows"] = data.rows();
  meta["data_dim"] = data.cols();
  meta["flow_rows"] = flow_rows_count;
  meta["flow_ratio"] = options.flow_ratio;
  meta["validation_rows"] = validation != nullptr ? validation->rows() : 0;
  meta["classifier_input"] = to_string(input);
  meta["seed"] = options.seed;
  meta["ceiling_mode"] = options.ceiling.to_string();
  meta["log_z_samples"] = options.resolved_log_z_samples();
  meta["classifier_params"] = nlohmann::json::parse(options.classifier.to_json());
  meta["trees_trained"] = r.classifier.trees_trained;
  meta["trees_kept"] = r.classifier.trees_kept;
  meta["heldout_gain"] = r.heldout_gain;
  meta["flow_unchanged"] = r.flow_unchanged;
  meta["heldout_gain_se"] = r.heldout_gain_se;
  meta["heldout_flow_log_likelihood"] = r.heldout_flow_log_likelihood;
  meta["nfcal_version"] = kVersion;
  meta["xgboost_version"] = xgboost_version();
  return CalibratedFlow(flow, classifier, ceiling, r.log_z, bound, meta.dump(), input);
}

}  // namespace nfcal
