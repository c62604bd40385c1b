// XGBoost through its C API: training with held-out tree selection, in-place margin
// prediction, and model bytes. Every call is checked; a failure becomes an XGBoostError that
// carries XGBoost's own message (XGBGetLastError is per thread, so it is read at once).
#include "nfcal/xgboost_classifier.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <utility>

#include <nlohmann/json.hpp>
#include <xgboost/c_api.h>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/train.hpp"

#include "common/philox.hpp"

namespace nfcal {

namespace {

constexpr const char* kBalanceAttribute = "nfcal_balance";
constexpr const char* kHeldoutMarginConfig =
    R"({"type":1,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false})";

// XGBoost's message as one line of printable ASCII, without what its log format adds around
// it: the time stamp and source location in front ("[10:31:07] /src/c_api/c_api.cc:1513: "),
// and the stack trace and the lines that only point at a character behind. Bytes it quotes
// from a damaged model are written as \xNN.
std::string xgboost_reason(const char* raw) {
  std::string text = raw != nullptr ? raw : "";
  const std::size_t trace = text.find("Stack trace:");
  if (trace != std::string::npos) text.erase(trace);
  if (!text.empty() && text[0] == '[') {
    const std::size_t stamp_end = text.find("] ");
    const std::size_t location_end =
        stamp_end == std::string::npos ? std::string::npos : text.find(": ", stamp_end + 2);
    // A location is one word ("path/file.cc:123"); anything else is part of the message.
    if (location_end != std::string::npos && text.find(' ', stamp_end + 2) > location_end) {
      text.erase(0, location_end + 2);
    }
  }

  std::string reason;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const bool marker_only = line.find_first_not_of(" \t\r~^") == std::string::npos;
    if (!marker_only) {
      const std::size_t first = line.find_first_not_of(" \t");
      const std::size_t last = line.find_last_not_of(" \t\r");
      reason += (reason.empty() ? "" : " ") + line.substr(first, last - first + 1);
    }
    start = end + 1;
  }

  std::string printable;
  for (const char c : reason) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      printable += c;
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", byte);
      printable += escaped;
    }
  }
  return printable;
}

// Turns a failed XGBoost call into an XGBoostError naming the call and XGBoost's reason.
void check_xgb(int status, const char* call) {
  if (status != 0) {
    throw XGBoostError(std::string("XGBoost ") + call +
                       " failed: " + xgboost_reason(XGBGetLastError()));
  }
}

// The __array_interface__ JSON of a host float32 matrix (rows, cols), row-major.
std::string array_interface(const float* x, std::size_t rows, std::size_t cols) {
  const auto address = reinterpret_cast<std::uintptr_t>(x);
  return "{\"data\":[" + std::to_string(address) + ",true],\"shape\":[" + std::to_string(rows) +
         "," + std::to_string(cols) + "],\"strides\":null,\"typestr\":\"<f4\",\"version\":3}";
}

// Owns a DMatrixHandle.
struct DMatrix {
  DMatrixHandle handle = nullptr;
  DMatrix() = default;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  ~DMatrix() {
    if (handle != nullptr) XGDMatrixFree(handle);
  }
};

// Rows that share one label, fed to a quantile DMatrix without being copied together first.
struct LabelledBlock {
  const Matrix<float>* rows;
  float label;
};

// The iterator XGBoost pulls blocks from: each next() puts one block into the proxy DMatrix.
// Errors cannot cross the C callbacks as exceptions, so they are kept and thrown afterwards.
struct BlockIterator {
  std::vector<LabelledBlock> blocks;
  std::size_t next = 0;
  DMatrixHandle proxy = nullptr;
  std::vector<float> labels;  // the current block's, read by XGBoost during next()
  std::string error;
};

int next_block(DataIterHandle handle) {
  auto* it = static_cast<BlockIterator*>(handle);
  if (it->next == it->blocks.size() || !it->error.empty()) return 0;
  const LabelledBlock& block = it->blocks[it->next++];
  const std::string data =
      array_interface(block.rows->data(), block.rows->rows(), block.rows->cols());
  it->labels.assign(block.rows->rows(), block.label);
  if (XGProxyDMatrixSetDataDense(it->proxy, data.c_str()) != 0 ||
      XGDMatrixSetFloatInfo(it->proxy, "label", it->labels.data(), it->labels.size()) != 0) {
    it->error = xgboost_reason(XGBGetLastError());
    return 0;
  }
  return 1;
}

void reset_blocks(DataIterHandle handle) { static_cast<BlockIterator*>(handle)->next = 0; }

// A quantile DMatrix over the blocks: XGBoost keeps only each value's histogram bin (one byte
// at up to 256 bins instead of eight for a sparse entry), which is all `hist` trees read.
// `reference` (a training matrix) lends its bin boundaries to a matrix used for prediction.
void make_quantile_dmatrix(DMatrix* out, std::vector<LabelledBlock> blocks, DMatrixHandle reference,
                           int max_bin, int threads) {
  DMatrix proxy;
  check_xgb(XGProxyDMatrixCreate(&proxy.handle), "XGProxyDMatrixCreate");
  BlockIterator it;
  it.blocks = std::move(blocks);
  it.proxy = proxy.handle;
  const std::string config = "{\"missing\":NaN,\"nthread\":" + std::to_string(threads) +
                             ",\"max_bin\":" + std::to_string(max_bin) + "}";
  const int status = XGQuantileDMatrixCreateFromCallback(&it, proxy.handle, reference, reset_blocks,
                                                         next_block, config.c_str(), &out->handle);
  if (!it.error.empty()) {
    throw XGBoostError("XGBoost quantile DMatrix: a block was refused: " + it.error);
  }
  check_xgb(status, "XGQuantileDMatrixCreateFromCallback");
}

// Sets one booster parameter; XGBoost only stores it, a bad value fails at the next update.
void set_param(BoosterHandle booster, const char* name, const std::string& value) {
  const std::string call = std::string("XGBoosterSetParam(") + name + "=" + value + ")";
  check_xgb(XGBoosterSetParam(booster, name, value.c_str()), call.c_str());
}

// A double printed so that it reads back to the same value.
std::string exact(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

int resolve_threads(int threads) {
  check_thread_count(threads);
  return threads > 0 ? threads : num_threads();
}

// A seeded permutation of 0..n-1 (Fisher-Yates on keyed Philox words), the same on every
// platform and library version.
std::vector<std::size_t> keyed_permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = n; i > 1; --i) {
    const rng::Words4 w = rng::keyed_words(seed, i, 0, rng::kStreamShuffle);
    const std::uint64_t r = (static_cast<std::uint64_t>(w.w[0]) << 32) | w.w[1];
    std::swap(order[i - 1], order[r % i]);
  }
  return order;
}

// Rows of x listed in order[first, first + count).
Matrix<float> gather_rows(const Matrix<float>& x, const std::vector<std::size_t>& order,
                          std::size_t first, std::size_t count) {
  Matrix<float> out(count, x.cols());
  for (std::size_t i = 0; i < count; ++i) {
    const float* src = x.row(order[first + i]);
    std::copy(src, src + x.cols(), out.row(i));
  }
  return out;
}

// How many of n rows to hold out: the fraction, at least one when any, leaving one to train.
std::size_t heldout_count(std::size_t n, double fraction, const char* what) {
  if (fraction <= 0) return 0;
  const auto count = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::llround(fraction * static_cast<double>(n))));
  if (count >= n) {
    throw InvalidArgument(std::string("XGBoost training: ") + std::to_string(n) + " " + what +
                          " rows are too few to hold out a validation_fraction of " +
                          exact(fraction));
  }
  return count;
}

// A booster over the cached matrices with the calibration parameters, owned by the caller.
// base_score is the class prior n1 / (n1 + n0), so the starting margin is exactly the
// balance log(n1 / n0).
BoosterHandle create_booster(const std::vector<DMatrixHandle>& cache, const XGBoostParams& params,
                             std::size_t n1, std::size_t n0, int threads) {
  BoosterHandle h = nullptr;
  check_xgb(XGBoosterCreate(cache.data(), cache.size(), &h), "XGBoosterCreate");
  try {
    set_param(h, "validate_parameters", "1");
    set_param(h, "verbosity", "1");
    set_param(h, "objective", "binary:logistic");
    set_param(h, "tree_method", "hist");
    set_param(h, "base_score", exact(static_cast<double>(n1) / static_cast<double>(n1 + n0)));
    set_param(h, "max_depth", std::to_string(params.max_depth));
    set_param(h, "eta", exact(params.learning_rate));
    set_param(h, "subsample", exact(params.subsample));
    set_param(h, "colsample_bytree", exact(params.colsample));
    set_param(h, "num_parallel_tree", std::to_string(params.parallel_trees));
    set_param(h, "min_child_weight", exact(params.min_child_weight));
    set_param(h, "lambda", exact(params.lambda));
    set_param(h, "alpha", exact(params.alpha));
    set_param(h, "max_bin", std::to_string(params.max_bin));
    set_param(h, "nthread", std::to_string(threads));
    set_param(h, "seed", std::to_string(params.seed & 0x7fffffffu));
    set_param(h, "device", params.device);
  } catch (...) {
    XGBoosterFree(h);
    throw;
  }
  return h;
}

// Raw margins of a DMatrix from the booster's prediction cache, with the balance removed.
std::vector<float> cached_margins(BoosterHandle booster, DMatrixHandle rows, double balance) {
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  check_xgb(
      XGBoosterPredictFromDMatrix(booster, rows, kHeldoutMarginConfig, &shape, &dims, &result),
      "XGBoosterPredictFromDMatrix");
  bst_ulong count = 1;
  for (bst_ulong d = 0; d < dims; ++d) count *= shape[d];
  std::vector<float> out(result, result + count);
  for (float& m : out) m = static_cast<float>(m - balance);
  return out;
}

}  // namespace

// --- Parameters ------------------------------------------------------------------------------

void XGBoostParams::validate() const {
  auto fail = [](const std::string& field, const std::string& rule) {
    throw InvalidArgument("XGBoost parameter " + field + " " + rule);
  };
  if (trees < 1) fail("trees", "must be >= 1");
  if (max_depth < 1) fail("max_depth", "must be >= 1");
  if (!(learning_rate > 0 && learning_rate <= 1)) fail("learning_rate", "must be in (0, 1]");
  if (!(subsample > 0 && subsample <= 1)) fail("subsample", "must be in (0, 1]");
  if (!(colsample > 0 && colsample <= 1)) fail("colsample", "must be in (0, 1]");
  if (parallel_trees < 1) fail("parallel_trees", "must be >= 1");
  if (parallel_trees > 1 && subsample == 1 && colsample == 1) {
    fail("parallel_trees", "above 1 needs subsample or colsample below 1, or its trees are equal");
  }
  if (!(min_child_weight >= 0)) fail("min_child_weight", "must be >= 0");
  if (!(lambda >= 0)) fail("lambda", "must be >= 0");
  if (!(alpha >= 0)) fail("alpha", "must be >= 0");
  if (max_bin < 2) fail("max_bin", "must be >= 2");
  if (threads < 0 || threads > kMaxThreads) {
    fail("threads", "must be between 0 and " + std::to_string(kMaxThreads));
  }
  if (early_stopping_rounds < 0) fail("early_stopping_rounds", "must be >= 0");
  if (!(validation_fraction >= 0 && validation_fraction < 1)) {
    fail("validation_fraction", "must be in [0, 1)");
  }
  if (device != "cpu" && device != "cuda" && device.rfind("cuda:", 0) != 0) {
    fail("device", "must be cpu, cuda or cuda:N, not '" + device + "'");
  }
}

std::string XGBoostParams::to_json() const {
  nlohmann::json j;
  j["trees"] = trees;
  j["max_depth"] = max_depth;
  j["learning_rate"] = learning_rate;
  j["subsample"] = subsample;
  j["colsample"] = colsample;
  j["parallel_trees"] = parallel_trees;
  j["min_child_weight"] = min_child_weight;
  j["lambda"] = lambda;
  j["alpha"] = alpha;
  j["max_bin"] = max_bin;
  j["threads"] = threads;
  j["seed"] = seed;
  j["early_stopping_rounds"] = early_stopping_rounds;
  j["refit"] = refit;
  j["validation_fraction"] = validation_fraction;
  j["device"] = device;
  return j.dump();
}

// --- The booster handle ----------------------------------------------------------------------

struct XGBoostClassifier::Booster {
  BoosterHandle handle = nullptr;

  explicit Booster(BoosterHandle h) : handle(h) {}
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster() {
    if (handle != nullptr) XGBoosterFree(handle);
  }
};

XGBoostClassifier::XGBoostClassifier(std::unique_ptr<Booster> booster)
    : booster_(std::move(booster)) {
  // The feature count and the balance live in the model; read them once.
  bst_ulong features = 0;
  check_xgb(XGBoosterGetNumFeature(booster_->handle, &features), "XGBoosterGetNumFeature");
  num_features_ = static_cast<int>(features);

  const char* value = nullptr;
  int found = 0;
  check_xgb(XGBoosterGetAttr(booster_->handle, kBalanceAttribute, &value, &found),
            "XGBoosterGetAttr");
  balance_ = found != 0 ? std::strtod(value, nullptr) : 0.0;
}

XGBoostClassifier::XGBoostClassifier(XGBoostClassifier&&) noexcept = default;
XGBoostClassifier& XGBoostClassifier::operator=(XGBoostClassifier&&) noexcept = default;
XGBoostClassifier::~XGBoostClassifier() = default;

// --- Training --------------------------------------------------------------------------------

XGBoostClassifier XGBoostClassifier::train(const Matrix<float>& data,
                                           const Matrix<float>& flow_rows,
                                           const XGBoostParams& params, const SelectionScore& score,
                                           XGBoostTrainReport* report,
                                           const RoundCallback& on_round,
                                           const HeldOutRows& heldout) {
  const auto start = std::chrono::steady_clock::now();
  params.validate();
  const int dim = static_cast<int>(data.cols());
  check_rows(data, dim, "classifier data rows");
  check_rows(flow_rows, dim, "classifier flow rows");
  const int threads = resolve_threads(params.threads);
  const bool given = heldout.given();
  if (given) {
    if (heldout.data == nullptr || heldout.flow == nullptr) {
      throw InvalidArgument("XGBoost training: held-out rows need both data and flow rows");
    }
    if (heldout.data->rows() == 0 || heldout.flow->rows() == 0) {
      throw InvalidArgument("XGBoost training: the given held-out rows are empty");
    }
    check_rows(*heldout.data, dim, "classifier held-out data rows");
    check_rows(*heldout.flow, dim, "classifier held-out flow rows");
  }

  // The rows to hold out: the given ones, or a seeded share of each class (data files may be
  // sorted, so shuffle first).
  const double fraction = given ? 0.0 : params.validation_fraction;
  const std::size_t hold1 =
      given ? heldout.data->rows() : heldout_count(data.rows(), fraction, "data");
  const std::size_t hold0 =
      given ? heldout.flow->rows() : heldout_count(flow_rows.rows(), fraction, "flow");
  const auto order1 =
      given ? std::vector<std::size_t>{} : keyed_permutation(data.rows(), params.seed);
  const auto order0 = given ? std::vector<std::size_t>{}
                            : keyed_permutation(flow_rows.rows(), params.seed ^ 0x5bd1e995u);
  const std::size_t n1 = given ? data.rows() : data.rows() - hold1;
  const std::size_t n0 = given ? flow_rows.rows() : flow_rows.rows() - hold0;

  // Quantile DMatrices of the training rows (data labelled 1, flow labelled 0) and of the
  // held-out ones, binned at the training rows' boundaries; the held-out ones join the
  // booster's cache so each round adds one tree's predictions instead of recomputing all of
  // them. XGBoost keeps only bins, so our gathered copies go at once.
  auto train_matrix = std::make_unique<DMatrix>();
  auto heldout1_matrix = std::make_unique<DMatrix>();
  auto heldout0_matrix = std::make_unique<DMatrix>();
  if (given) {
    make_quantile_dmatrix(train_matrix.get(), {{&data, 1.0f}, {&flow_rows, 0.0f}}, nullptr,
                          params.max_bin, threads);
  } else {
    const Matrix<float> train1 = gather_rows(data, order1, 0, n1);
    const Matrix<float> train0 = gather_rows(flow_rows, order0, 0, n0);
    make_quantile_dmatrix(train_matrix.get(), {{&train1, 1.0f}, {&train0, 0.0f}}, nullptr,
                          params.max_bin, threads);
  }
  Matrix<float> heldout1 = given ? *heldout.data : gather_rows(data, order1, n1, hold1);
  Matrix<float> heldout0 = given ? *heldout.flow : gather_rows(flow_rows, order0, n0, hold0);
  std::vector<DMatrixHandle> cache{train_matrix->handle};
  if (hold1 > 0) {
    make_quantile_dmatrix(heldout1_matrix.get(), {{&heldout1, 1.0f}}, train_matrix->handle,
                          params.max_bin, threads);
    make_quantile_dmatrix(heldout0_matrix.get(), {{&heldout0, 0.0f}}, train_matrix->handle,
                          params.max_bin, threads);
    cache.push_back(heldout1_matrix->handle);
    cache.push_back(heldout0_matrix->handle);
  }
  auto booster = std::make_unique<Booster>(create_booster(cache, params, n1, n0, threads));
  BoosterHandle h = booster->handle;
  const double balance = std::log(static_cast<double>(n1) / static_cast<double>(n0));

  // Boost one round at a time, scoring the held-out rows after each.
  const SelectionScore selection =
      score ? score : [](const std::vector<float>& d, const std::vector<float>& f) {
        return heldout_gain(d, f, std::numeric_limits<double>::infinity());
      };
  XGBoostTrainReport local;
  XGBoostTrainReport& r = report != nullptr ? *report : local;
  r = XGBoostTrainReport{};
  int best = 0;
  double best_score = -std::numeric_limits<double>::infinity();
  int round = 0;
  for (; round < params.trees; ++round) {
    check_xgb(XGBoosterUpdateOneIter(h, round, train_matrix->handle), "XGBoosterUpdateOneIter");
    if (hold1 == 0) {
      if (on_round) on_round({round + 1, params.trees, std::numeric_limits<double>::quiet_NaN()});
      continue;
    }
    const double s = selection(cached_margins(h, heldout1_matrix->handle, balance),
                               cached_margins(h, heldout0_matrix->handle, balance));
    r.score_history.push_back(s);
    if (on_round) on_round({round + 1, params.trees, s});
    if (s > best_score) {
      best_score = s;
      best = round + 1;
    } else if (params.early_stopping_rounds > 0 &&
               round + 1 - best >= params.early_stopping_rounds) {
      r.stopped_early = true;
      ++round;
      break;
    }
  }
  if (hold1 == 0 || best == 0 || params.early_stopping_rounds == 0) best = round;

  // Keep only the selected rounds, then free the training caches.
  if (best < round) {
    BoosterHandle sliced = nullptr;
    check_xgb(XGBoosterSlice(h, 0, best, 1, &sliced), "XGBoosterSlice");
    booster = std::make_unique<Booster>(sliced);
    h = booster->handle;
  }
  check_xgb(XGBoosterReset(h), "XGBoosterReset");
  train_matrix.reset();
  heldout1_matrix.reset();
  heldout0_matrix.reset();
  check_xgb(XGBoosterSetAttr(h, kBalanceAttribute, exact(balance).c_str()), "XGBoosterSetAttr");
  XGBoostClassifier classifier(std::move(booster));
  if (hold1 > 0) {
    r.heldout_data_margins = classifier.margins(heldout1);
    r.heldout_flow_margins = classifier.margins(heldout0);
  }

  // Refit: the chosen number of trees again, on the training and the held-out rows together.
  r.balance = balance;
  if (params.refit && hold1 > 0 && best > 0) {
    std::vector<LabelledBlock> all_rows{{&data, 1.0f}, {&flow_rows, 0.0f}};
    if (given) {
      all_rows.push_back({&heldout1, 1.0f});
      all_rows.push_back({&heldout0, 0.0f});
    }
    const std::size_t all1 = given ? n1 + hold1 : data.rows();
    const std::size_t all0 = given ? n0 + hold0 : flow_rows.rows();
    DMatrix all_matrix;
    make_quantile_dmatrix(&all_matrix, all_rows, nullptr, params.max_bin, threads);
    auto refitted =
        std::make_unique<Booster>(create_booster({all_matrix.handle}, params, all1, all0, threads));
    for (int k = 0; k < best; ++k) {
      check_xgb(XGBoosterUpdateOneIter(refitted->handle, k, all_matrix.handle),
                "XGBoosterUpdateOneIter");
      if (on_round) {
        on_round({round + k + 1, round + best, std::numeric_limits<double>::quiet_NaN(), true});
      }
    }
    r.balance = std::log(static_cast<double>(all1) / static_cast<double>(all0));
    check_xgb(XGBoosterReset(refitted->handle), "XGBoosterReset");
    check_xgb(XGBoosterSetAttr(refitted->handle, kBalanceAttribute, exact(r.balance).c_str()),
              "XGBoosterSetAttr");
    classifier = XGBoostClassifier(std::move(refitted));
    r.refit = true;
  }

  // The report: what was run, what was kept, and the held-out rows with their margins.
  r.trees_trained = round;
  r.trees_kept = best;
  r.trees_per_round = params.parallel_trees;
  r.best_score = hold1 > 0 ? r.score_history[static_cast<std::size_t>(best) - 1]
                           : std::numeric_limits<double>::quiet_NaN();
  r.train_data_rows = n1;
  r.train_flow_rows = n0;
  r.heldout_data_rows = hold1;
  r.heldout_flow_rows = hold0;
  r.heldout_data = std::move(heldout1);
  r.heldout_flow = std::move(heldout0);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return classifier;
}

// --- Prediction ------------------------------------------------------------------------------

void XGBoostClassifier::margins(const float* x, std::size_t n, float* out) const {
  margins(x, n, out, 0);
}

void XGBoostClassifier::margins(const float* x, std::size_t n, float* out, int trees) const {
  if (n == 0) return;
  if (trees < 0 || trees > num_trees()) {
    throw InvalidArgument("XGBoostClassifier::margins: trees must be in [0, " +
                          std::to_string(num_trees()) + "], not " + std::to_string(trees));
  }

  // In-place prediction of raw margins; the result buffer is XGBoost's, so copy it at once.
  const std::string data = array_interface(x, n, static_cast<std::size_t>(num_features_));
  const std::string config =
      "{\"type\":1,\"training\":false,\"iteration_begin\":0,\"iteration_end\":" +
      std::to_string(trees) + ",\"strict_shape\":false,\"missing\":NaN}";
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  check_xgb(XGBoosterPredictFromDense(booster_->handle, data.c_str(), config.c_str(), nullptr,
                                      &shape, &dims, &result),
            "XGBoosterPredictFromDense");
  bst_ulong count = 1;
  for (bst_ulong d = 0; d < dims; ++d) count *= shape[d];
  if (count != n) {
    throw XGBoostError("XGBoost returned " + std::to_string(count) + " margins for " +
                       std::to_string(n) + " rows: the model is not a binary classifier");
  }

  // Remove the class balance the booster was trained with.
  const float balance = static_cast<float>(balance_);
  for (std::size_t i = 0; i < n; ++i) out[i] = result[i] - balance;
}

std::string XGBoostClassifier::name() const {
  return "xgboost (" + std::to_string(num_trees()) + " trees)";
}

int XGBoostClassifier::num_trees() const {
  int rounds = 0;
  check_xgb(XGBoosterBoostedRounds(booster_->handle, &rounds), "XGBoosterBoostedRounds");
  return rounds;
}

double XGBoostClassifier::margin_lower_bound() const {
  // The model's own JSON: a leaf is a node without children, and its value is kept where an
  // inner node keeps its split condition. The booster starts at base_score, a probability
  // under binary:logistic (written as "5E-1" or "[5E-1]"), whose margin every row gets.
  double bound = 0;
  std::string base;
  try {
    const nlohmann::json model = nlohmann::json::parse(to_bytes("json"));
    const nlohmann::json& learner = model.at("learner");
    const nlohmann::json& booster = learner.at("gradient_booster");
    const nlohmann::json& trees =
        (booster.contains("gbtree") ? booster.at("gbtree") : booster).at("model").at("trees");
    for (const nlohmann::json& tree : trees) {
      const nlohmann::json& children = tree.at("left_children");
      const nlohmann::json& values = tree.at("split_conditions");
      double smallest = std::numeric_limits<double>::infinity();
      for (std::size_t node = 0; node < children.size(); ++node) {
        if (children[node].get<int>() == -1) {
          smallest = std::min(smallest, values.at(node).get<double>());
        }
      }
      bound += smallest;
    }
    base = learner.at("learner_model_param").at("base_score").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw XGBoostError(std::string("XGBoost's model JSON is not laid out as nfcal reads it: ") +
                       e.what());
  }

  base.erase(std::remove_if(base.begin(), base.end(), [](char c) { return c == '[' || c == ']'; }),
             base.end());
  char* end = nullptr;
  const double prior = std::strtod(base.c_str(), &end);
  if (base.empty() || *end != '\0' || !(prior > 0 && prior < 1)) {
    throw XGBoostError("XGBoost's model JSON has a base_score nfcal cannot read: '" + base + "'");
  }

  // The starting margin, the balance taken off as margins() does; the slack covers the float
  // sums of XGBoost's prediction.
  bound += std::log(prior / (1 - prior)) - balance_;
  return bound - 1e-4 * (1.0 + std::abs(bound));
}

// --- Model bytes -----------------------------------------------------------------------------

std::string XGBoostClassifier::to_bytes(const std::string& format) const {
  if (format != "ubj" && format != "json") {
    throw InvalidArgument("XGBoost model format must be ubj or json, not '" + format + "'");
  }
  const std::string config = "{\"format\":\"" + format + "\"}";
  bst_ulong length = 0;
  const char* bytes = nullptr;
  check_xgb(XGBoosterSaveModelToBuffer(booster_->handle, config.c_str(), &length, &bytes),
            "XGBoosterSaveModelToBuffer");
  return std::string(bytes, bytes + length);
}

XGBoostClassifier XGBoostClassifier::from_bytes(const std::string& bytes, int threads,
                                                const std::string& device) {
  if (bytes.empty()) throw XGBoostError("XGBoost model bytes are empty");

  // A fresh booster, the model, then the runtime settings the model does not carry.
  BoosterHandle raw = nullptr;
  check_xgb(XGBoosterCreate(nullptr, 0, &raw), "XGBoosterCreate");
  auto booster = std::make_unique<Booster>(raw);
  check_xgb(XGBoosterLoadModelFromBuffer(raw, bytes.data(), bytes.size()),
            "XGBoosterLoadModelFromBuffer");
  set_param(raw, "nthread", std::to_string(resolve_threads(threads)));
  set_param(raw, "device", device);
  return XGBoostClassifier(std::move(booster));
}

void XGBoostClassifier::save(const std::string& path, const std::string& format) const {
  write_file_atomically(path, to_bytes(format));
}

XGBoostClassifier XGBoostClassifier::load(const std::string& path, int threads,
                                          const std::string& device) {
  return from_bytes(read_file_bytes(path), threads, device);
}

std::string xgboost_version() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace nfcal
