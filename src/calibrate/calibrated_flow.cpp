// The calibrated density, its bundle file, and the flow-or-calibrated model wrapper.
#include "nfcal/calibrated_flow.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nfcal/compute.hpp"
#include "nfcal/error.hpp"

#include "common/features.hpp"

namespace nfcal {

namespace {

using Json = nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

// A header field that must be a finite number; ModelFormatError naming it otherwise.
double finite_field(const Json& header, const std::string& key, const std::string& source) {
  if (!header.contains(key) || !header[key].is_number() ||
      !std::isfinite(header[key].get<double>())) {
    throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                           source + ": header field '" + key + "' is missing or not a number");
  }
  return header[key].get<double>();
}

// An optional number of the header: `fallback` when absent (or null, where null is allowed),
// ModelFormatError naming the field when it is anything but a number.
double optional_number(const Json& header, const std::string& key, double fallback,
                       const std::string& source, bool null_allowed = false) {
  if (!header.contains(key) || (null_allowed && header[key].is_null())) return fallback;
  if (!header[key].is_number()) {
    throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                           source + ": header field '" + key + "' is not a number");
  }
  return header[key].get<double>();
}

// ModelFormatError for two header numbers that cannot both hold.
ModelFormatError inconsistent(const std::string& source, const std::string& what) {
  return ModelFormatError(ModelFormatError::Kind::kCorrupted,
                          source + ": inconsistent header: " + what);
}

// DataError unless the rows have the model's dimension.
void check_columns(const Matrix<float>& x, int dim) {
  if (x.cols() != static_cast<std::size_t>(dim)) {
    throw DataError("calibrated model: rows have " + std::to_string(x.cols()) +
                    " columns, the model has dimension " + std::to_string(dim));
  }
}

}  // namespace

// --- Classifier input ------------------------------------------------------------------------

std::string to_string(ClassifierInput input) {
  return input == ClassifierInput::kData ? "data" : "data+latent";
}

ClassifierInput parse_classifier_input(const std::string& text) {
  if (text == "data") return ClassifierInput::kData;
  if (text == "data+latent") return ClassifierInput::kDataAndLatent;
  throw InvalidArgument("classifier input '" + text + "' is not one of: data, data+latent");
}

int classifier_feature_count(ClassifierInput input, int dim) {
  return input == ClassifierInput::kData ? dim : 2 * dim;
}

Matrix<float> classifier_features(ClassifierInput input, const float* x, const float* u,
                                  std::size_t n, int dim) {
  const auto d = static_cast<std::size_t>(dim);
  Matrix<float> out(n, static_cast<std::size_t>(classifier_feature_count(input, dim)));
  for (std::size_t i = 0; i < n; ++i) {
    std::copy(x + i * d, x + (i + 1) * d, out.row(i));
    if (input == ClassifierInput::kDataAndLatent) {
      std::copy(u + i * d, u + (i + 1) * d, out.row(i) + d);
    }
  }
  return out;
}

Matrix<float> classifier_features_of_rows(ClassifierInput input, const Maf& flow, const float* x,
                                          std::size_t n) {
  std::vector<float> u;
  if (input == ClassifierInput::kDataAndLatent) {
    u.resize(n * static_cast<std::size_t>(flow.dim()));
    std::vector<double> log_det(n);
    flow.forward(x, n, u.data(), log_det.data());
  }
  return classifier_features(input, x, u.data(), n, flow.dim());
}

Matrix<float> classifier_features_of_samples(ClassifierInput input, Matrix<float> x,
                                             std::uint64_t seed, std::uint64_t first_row) {
  if (input == ClassifierInput::kData) return x;
  const int dim = static_cast<int>(x.cols());
  Matrix<float> out(x.rows(), 2 * x.cols());
#pragma omp parallel for schedule(static) if (x.rows() > 4096)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(x.rows()); ++i) {
    const auto row = static_cast<std::size_t>(i);
    features::latent_sample_row(x.row(row), dim, seed, first_row + row, out.row(row));
  }
  return out;
}

// --- CalibratedFlow --------------------------------------------------------------------------

CalibratedFlow::CalibratedFlow(Maf flow, std::shared_ptr<const Classifier> classifier,
                               double ceiling, LogZEstimate log_z, double sampling_bound,
                               std::string metadata_json, ClassifierInput input)
    : flow_(std::move(flow)),
      classifier_(std::move(classifier)),
      ceiling_(ceiling),
      sampling_bound_(std::isfinite(ceiling) ? ceiling : sampling_bound),
      log_z_(log_z),
      metadata_json_(std::move(metadata_json)),
      input_(input) {
  // The pieces must describe one density over one space.
  if (!classifier_) throw InvalidArgument("CalibratedFlow: the classifier is null");
  if (classifier_->num_features() != classifier_feature_count(input_, flow_.dim())) {
    throw InvalidArgument("CalibratedFlow: the classifier takes " +
                          std::to_string(classifier_->num_features()) +
                          " features but the flow has dimension " + std::to_string(flow_.dim()) +
                          " and the classifier input is " + to_string(input_));
  }
  if (std::isnan(ceiling_) || ceiling_ == -kInf) {
    throw InvalidArgument("CalibratedFlow: the ceiling must be a number or +infinity");
  }
  if (!std::isfinite(log_z_.log_z)) throw InvalidArgument("CalibratedFlow: log Z is not finite");
  if (!std::isfinite(sampling_bound_)) {
    throw InvalidArgument("CalibratedFlow: without a ceiling a finite sampling bound is needed");
  }
}

bool CalibratedFlow::exact_sampling() const { return std::isfinite(ceiling_); }

double CalibratedFlow::acceptance_predicted() const {
  return std::min(1.0, std::exp(log_z_.log_z - sampling_bound_));
}

Matrix<float> CalibratedFlow::classifier_rows(const float* x, std::size_t n, const float* u) const {
  if (u == nullptr) return classifier_features_of_rows(input_, flow_, x, n);
  return classifier_features(input_, x, u, n, dim());
}

void CalibratedFlow::margins(const float* x, std::size_t n, float* out, const float* u) const {
  if (n == 0) return;
  if (input_ == ClassifierInput::kData) {
    classifier_->margins(x, n, out);  // the rows themselves, without a copy
  } else {
    const Matrix<float> rows = classifier_rows(x, n, u);
    classifier_->margins(rows.data(), n, out);
  }

  // Any Classifier may be user code: a NaN would be rejected by every accept test and
  // poison log Z, so it is an error here, whatever class produced it.
  check_margins(out, n, "classifier '" + classifier_->name() + "'");
}

std::vector<float> CalibratedFlow::margins(const Matrix<float>& x) const {
  check_columns(x, dim());
  std::vector<float> out(x.rows());
  margins(x.data(), x.rows(), out.data());
  return out;
}

void CalibratedFlow::log_prob(const float* x, std::size_t n, float* out) const {
  if (n == 0) return;

  // Flow density and margins; latent input shares one pass through the flow between them.
  std::vector<float> m(n);
  if (input_ == ClassifierInput::kData) {
    flow_.log_prob(x, n, out);
    margins(x, n, m.data());
  } else {
    std::vector<float> u(n * static_cast<std::size_t>(dim()));
    flow_.log_prob(x, n, out, u.data());
    margins(x, n, m.data(), u.data());
  }

  // The correction in double.
  for (std::size_t i = 0; i < n; ++i) {
    const double clipped = std::min(static_cast<double>(m[i]), ceiling_);
    out[i] = static_cast<float>(static_cast<double>(out[i]) + clipped - log_z_.log_z);
  }
}

std::vector<float> CalibratedFlow::log_prob(const Matrix<float>& x) const {
  check_columns(x, dim());
  std::vector<float> out(x.rows());
  log_prob(x.data(), x.rows(), out.data());
  return out;
}

// --- The bundle ------------------------------------------------------------------------------

ModelFile CalibratedFlow::encode() const {
  // Only a classifier nfcal can serialize goes into a file.
  const auto* xgb = dynamic_cast<const XGBoostClassifier*>(classifier_.get());
  if (xgb == nullptr) {
    throw InvalidArgument("cannot save a calibrated model whose classifier is '" +
                          classifier_->name() +
                          "': only XGBoost classifiers can be stored in a model file");
  }

  // Header: the numbers that define the density, then what produced it.
  Json header;
  header["ceiling"] = std::isfinite(ceiling_) ? Json(ceiling_) : Json(nullptr);
  header["sampling_bound"] = sampling_bound_;
  header["log_z"] = log_z_.log_z;
  header["log_z_se"] = std::isfinite(log_z_.se) ? Json(log_z_.se) : Json(nullptr);
  header["ess"] = log_z_.ess;
  header["log_z_samples"] = log_z_.samples;
  header["max_margin"] = log_z_.max_margin;
  header["classifier"] = {{"type", "xgboost"},
                          {"input", to_string(input_)},
                          {"num_features", xgb->num_features()},
                          {"trees", xgb->num_trees()},
                          {"balance", xgb->balance()}};
  header["metadata"] = Json::parse(metadata_json_.empty() ? "{}" : metadata_json_);

  ModelFile file;
  file.kind = kCalibratedKind;
  file.header_json = header.dump();
  file.sections.emplace_back("flow", encode_model_file(encode_flow(flow_)));
  file.sections.emplace_back("classifier", xgb->to_bytes("ubj"));
  return file;
}

CalibratedFlow CalibratedFlow::decode(const ModelFile& file, int threads,
                                      const std::string& device) {
  require_kind(file, kCalibratedKind);
  const std::string& source = file.source;
  Json header;
  try {
    header = Json::parse(file.header_json);
  } catch (const Json::exception& e) {
    throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                           source + ": header is not JSON: " + e.what());
  }

  // The flow: a whole flow model file inside the bundle.
  Maf flow = decode_flow(decode_model_file(file.section("flow"), source + " (flow section)"));

  // The classifier, checked against the flow before anything uses it.
  std::shared_ptr<XGBoostClassifier> classifier;
  try {
    classifier = std::make_shared<XGBoostClassifier>(
        XGBoostClassifier::from_bytes(file.section("classifier"), threads, device));
  } catch (const XGBoostError& e) {
    throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                           source + ": classifier section: " + e.what());
  }
  const Json& described = header.value("classifier", Json::object());
  if (described.contains("type") && described["type"] != "xgboost") {
    throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                           source + ": the classifier is of type " + described["type"].dump() +
                               "; model files hold XGBoost classifiers");
  }

  // Bundles written before latent input existed carry no "input" and score the data alone.
  ClassifierInput input = ClassifierInput::kData;
  if (header.contains("classifier") && header["classifier"].is_object() &&
      header["classifier"].contains("input")) {
    try {
      input = parse_classifier_input(header["classifier"]["input"].get<std::string>());
    } catch (const std::exception& e) {
      throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                             source + ": header field 'classifier.input': " + e.what());
    }
  }
  if (classifier->num_features() != classifier_feature_count(input, flow.dim())) {
    throw ModelFormatError(
        ModelFormatError::Kind::kCorrupted,
        source + ": the classifier takes " + std::to_string(classifier->num_features()) +
            " features but the flow has dimension " + std::to_string(flow.dim()) +
            " and the classifier input is " + to_string(input));
  }

  // What the header says of the classifier must be what the section holds.
  const std::pair<const char*, Json> facts[] = {{"num_features", classifier->num_features()},
                                                {"trees", classifier->num_trees()},
                                                {"balance", classifier->balance()}};
  auto same = [](const Json& stored, const Json& actual) {
    if (!stored.is_number()) return false;
    const double a = stored.get<double>(), b = actual.get<double>();
    return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b));
  };
  for (const auto& [key, actual] : facts) {
    if (described.contains(key) && !same(described[key], actual)) {
      throw inconsistent(source, "'classifier." + std::string(key) + "' is " +
                                     described[key].dump() + " but the classifier's is " +
                                     actual.dump());
    }
  }

  // The numbers of the density.
  const bool clipped = header.contains("ceiling") && !header["ceiling"].is_null();
  const double ceiling = clipped ? finite_field(header, "ceiling", source) : kInf;
  LogZEstimate log_z;
  log_z.log_z = finite_field(header, "log_z", source);
  log_z.se = optional_number(header, "log_z_se", kInf, source, true);
  log_z.ess = optional_number(header, "ess", 0.0, source);
  log_z.max_margin = optional_number(header, "max_margin", 0.0, source);
  const double samples = optional_number(header, "log_z_samples", 0.0, source);
  if (!(samples >= 0 && samples <= 1e15 && samples == std::floor(samples))) {
    throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                           source + ": header field 'log_z_samples' is not a count");
  }
  log_z.samples = static_cast<std::size_t>(samples);
  if (!(log_z.se >= 0)) {
    throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                           source + ": header field 'log_z_se' is negative");
  }
  if (!(log_z.ess >= 0 && (samples == 0 || log_z.ess <= samples * (1 + 1e-9)))) {
    throw inconsistent(source, "the effective sample size " + fmt::format("{:g}", log_z.ess) +
                                   " is not between 0 and the " + fmt::format("{:g}", samples) +
                                   " samples");
  }
  const double bound = finite_field(header, "sampling_bound", source);

  // The numbers must describe one density: a ceiling is the sampling bound, and log Z, the log
  // of a mean of e^min(m, L), lies between the smallest and the largest clipped margin.
  if (clipped && bound != ceiling) {
    throw inconsistent(source, "the ceiling is " + fmt::format("{:g}", ceiling) +
                                   " but the sampling bound is " + fmt::format("{:g}", bound));
  }
  if (!clipped && header.contains("max_margin") && bound < log_z.max_margin) {
    throw inconsistent(source, "no ceiling, yet the sampling bound " + fmt::format("{:g}", bound) +
                                   " is below the largest margin seen, " +
                                   fmt::format("{:g}", log_z.max_margin));
  }
  const double upper_slack = 1e-9 * (1 + std::abs(bound));
  if (log_z.log_z > bound + upper_slack) {
    throw inconsistent(source, "log Z " + fmt::format("{:g}", log_z.log_z) +
                                   " is above the sampling bound " + fmt::format("{:g}", bound));
  }
  // The trees' smallest margin takes a pass over the whole model, so it is read only for a
  // log Z well below zero; a classifier of a fitted flow gives one near zero.
  if (log_z.log_z < std::min(0.0, ceiling) - 1) {
    double lowest = ceiling;
    try {
      lowest = std::min(classifier->margin_lower_bound(), ceiling);
    } catch (const XGBoostError& e) {
      throw ModelFormatError(ModelFormatError::Kind::kCorrupted,
                             source + ": classifier section: " + e.what());
    }
    // XGBoost sums its leaves in float, so margins may round slightly below the exact bound.
    const double lower_slack = 1e-4 * (1 + std::abs(lowest));
    if (log_z.log_z < lowest - lower_slack) {
      throw inconsistent(source, "log Z " + fmt::format("{:g}", log_z.log_z) +
                                     " is below every margin the classifier can give (" +
                                     fmt::format("{:g}", lowest) + ")");
    }
  }
  const std::string metadata = header.contains("metadata") ? header["metadata"].dump() : "{}";
  return CalibratedFlow(std::move(flow), std::move(classifier), ceiling, log_z, bound, metadata,
                        input);
}

void CalibratedFlow::save(const std::string& path) const { write_model_file(path, encode()); }

CalibratedFlow CalibratedFlow::load(const std::string& path, int threads,
                                    const std::string& device) {
  return decode(read_model_file(path), threads, device);
}

// --- AnyModel --------------------------------------------------------------------------------

AnyModel::AnyModel(Maf flow) : flow_(std::make_shared<const Maf>(std::move(flow))) {}

AnyModel::AnyModel(CalibratedFlow model)
    : calibrated_(std::make_shared<const CalibratedFlow>(std::move(model))) {}

std::string AnyModel::kind() const { return is_calibrated() ? kCalibratedKind : kFlowKind; }

const Maf& AnyModel::flow() const { return is_calibrated() ? calibrated_->flow() : *flow_; }

std::vector<float> AnyModel::log_prob(const Matrix<float>& x, const Device& device) const {
  if (is_calibrated()) return nfcal::log_prob(*calibrated_, x, device);
  return nfcal::log_prob(*flow_, x, device);
}

Matrix<float> AnyModel::sample(std::size_t n, const SamplerOptions& options,
                               SamplerReport* report) const {
  if (is_calibrated()) return sample_calibrated(*calibrated_, n, options, report);
  return nfcal::sample(*flow_, n, options.seed, options.device);
}

AnyModel load_model(const std::string& path, int threads, const std::string& device) {
  const ModelFile file = read_model_file(path);
  if (file.kind == kFlowKind) return AnyModel(decode_flow(file));
  if (file.kind == kCalibratedKind) {
    return AnyModel(CalibratedFlow::decode(file, threads, device));
  }
  throw ModelFormatError(
      ModelFormatError::Kind::kWrongKind,
      path + ": holds a model of kind '" + file.kind + "', expected 'flow' or 'calibrated'");
}

}  // namespace nfcal
