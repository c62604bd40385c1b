// Gradient-boosted trees (XGBoost, through its C API) as the calibration classifier.
//
// Training takes data rows (label 1) and flow samples (label 0), holds out a fraction of each,
// and boosts one tree at a time. After every tree it scores the held-out rows with a selection
// criterion (by default the held-out gain in calibrated log-likelihood, see heldout_gain in
// classifier.hpp) and keeps the number of trees that scored best, stopping once
// early_stopping_rounds trees in a row brought no gain. This guards against a classifier that
// fits noise, which would make the calibrated model worse than the flow.
//
// The booster starts from the class prior (base_score = n1 / (n0 + n1)), and margins() removes
// the balance term log(n1 / n0), so an uninformative classifier returns 0. The balance is stored
// in the model as an attribute, so it survives save and load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nfcal/classifier.hpp"
#include "nfcal/matrix.hpp"

namespace nfcal {

/// What people tune, with defaults that suit calibration on tabular data.
struct XGBoostParams {
  int trees = 500;  // upper bound on boosting rounds
  int max_depth = 6;
  double learning_rate = 0.1;
  double subsample = 1.0;  // row fraction per tree, in (0, 1]
  double colsample = 1.0;  // column fraction per tree, in (0, 1]
  // Trees grown side by side in each round and averaged (XGBoost's num_parallel_tree), each
  // on its own subsample: a boosted random forest. With subsample and colsample at 1 the
  // trees of a round would be identical, so more than 1 needs one of them below 1.
  int parallel_trees = 1;
  double min_child_weight = 1.0;
  double lambda = 1.0;               // L2 regularization of leaf weights
  double alpha = 0.0;                // L1 regularization of leaf weights
  int max_bin = 256;                 // histogram bins per feature
  int threads = 0;                   // 0: nfcal's thread count (num_threads())
  std::uint64_t seed = 0;            // row and column subsampling, and the held-out split
  int early_stopping_rounds = 50;    // 0: keep every tree (scores are still reported)
  double validation_fraction = 0.2;  // held out of both classes for tree selection
  // Once the held-out rows have chosen the number of trees, boost that many again on every
  // row: the final trees see a quarter more data (docs/calibration.md, "Refit").
  bool refit = true;
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"

  /// Throws InvalidArgument naming the first field out of range.
  void validate() const;
  /// The parameters as a JSON object (for training metadata in model bundles).
  std::string to_json() const;
};

/// Scores held-out margins (class balance removed): data rows' and flow rows'. Higher is
/// better. Tree selection keeps the number of trees that maximizes it.
using SelectionScore = std::function<double(const std::vector<float>& data_margins,
                                            const std::vector<float>& flow_margins)>;

/// Where training stands after a boosting round, for progress displays. The refit's rounds
/// are counted on after the selection's.
struct BoostingRound {
  int rounds = 0;          // rounds done so far
  int rounds_at_most = 0;  // the most there can be
  double score = 0;        // held-out score after this round; NaN when nothing is held out
  bool refit = false;      // a round of the refit on all rows (no score)
};

/// Called after every boosting round.
using RoundCallback = std::function<void(const BoostingRound& round)>;

/// What training did.
struct XGBoostTrainReport {
  int trees_trained = 0;              // rounds boosted before stopping
  int trees_kept = 0;                 // rounds kept: argmax of the score
  int trees_per_round = 1;            // parallel_trees: averaged trees in each round
  double best_score = 0;              // the score at trees_kept
  std::vector<double> score_history;  // score after each round, [0] after the first tree
  bool stopped_early = false;
  std::size_t train_data_rows = 0, train_flow_rows = 0;
  std::size_t heldout_data_rows = 0, heldout_flow_rows = 0;
  double balance = 0;  // log(n1 / n0) of the rows the returned model was trained on
  bool refit = false;  // the returned model was boosted again on all rows
  double seconds = 0;
  // Held-out rows and their margins under the kept trees of the model that chose them (before
  // any refit, so they stay held out), for reports and ceiling choice.
  Matrix<float> heldout_data, heldout_flow;
  std::vector<float> heldout_data_margins, heldout_flow_margins;
};

/// Rows held out to choose the number of trees, given in place of a validation_fraction split
/// of the training rows: data rows (label 1) and flow rows (label 0), both (n, D). When given,
/// every training row trains and a refit boosts on the training and held-out rows together.
struct HeldOutRows {
  const Matrix<float>* data = nullptr;
  const Matrix<float>* flow = nullptr;
  bool given() const { return data != nullptr || flow != nullptr; }
};

/// An XGBoost booster trained as a calibration classifier. Move-only; prediction is
/// thread-safe, as XGBoost's own in-place prediction is for tree models.
class XGBoostClassifier : public Classifier {
 public:
  /// Trains on data rows (label 1) against flow rows (label 0), both (n, D), holding out
  /// `heldout` when given and a validation_fraction of each class otherwise. score defaults
  /// to heldout_gain(..., +infinity). Throws DataError on NaN/Inf or mismatched columns,
  /// InvalidArgument on bad params, too few rows to hold any out, or held-out rows given for
  /// one class only or with no rows, XGBoostError when XGBoost fails (its message included).
  static XGBoostClassifier train(const Matrix<float>& data, const Matrix<float>& flow_rows,
                                 const XGBoostParams& params, const SelectionScore& score = {},
                                 XGBoostTrainReport* report = nullptr,
                                 const RoundCallback& on_round = {},
                                 const HeldOutRows& heldout = {});

  /// Loads a model saved by to_bytes() (UBJSON) or XGBoost's JSON. threads and device are
  /// runtime settings, set again here. Throws XGBoostError when XGBoost rejects the bytes.
  static XGBoostClassifier from_bytes(const std::string& bytes, int threads = 0,
                                      const std::string& device = "cpu");

  XGBoostClassifier(XGBoostClassifier&&) noexcept;
  XGBoostClassifier& operator=(XGBoostClassifier&&) noexcept;
  ~XGBoostClassifier() override;

  int num_features() const override { return num_features_; }
  /// Raw margins with the balance removed, through XGBoost's in-place dense prediction.
  void margins(const float* x, std::size_t n, float* out) const override;
  using Classifier::margins;
  /// The same with only the first `trees` rounds (0: all). For tree-count studies.
  void margins(const float* x, std::size_t n, float* out, int trees) const;
  std::string name() const override;

  /// Boosting rounds in the model.
  int num_trees() const;
  /// A bound below every margin the model can return: the sum over its trees of each tree's
  /// smallest leaf, with the class balance removed as margins() removes it. A ceiling at or
  /// below it clips every margin to the ceiling itself, which leaves the flow unchanged.
  double margin_lower_bound() const;
  /// log(n1 / n0) of the rows it was trained on; subtracted by margins().
  double balance() const { return balance_; }
  /// The model as UBJSON bytes ("ubj") or JSON text ("json").
  std::string to_bytes(const std::string& format = "ubj") const;
  /// Saves to_bytes(format) to a file atomically. Throws FileError naming the path.
  void save(const std::string& path, const std::string& format = "ubj") const;
  /// Loads a file written by save() (or any XGBoost binary:logistic model of JSON/UBJSON).
  static XGBoostClassifier load(const std::string& path, int threads = 0,
                                const std::string& device = "cpu");

 private:
  struct Booster;
  explicit XGBoostClassifier(std::unique_ptr<Booster> booster);

  std::unique_ptr<Booster> booster_;
  int num_features_ = 0;
  double balance_ = 0;
};

/// The version of the XGBoost library nfcal runs against, "MAJOR.MINOR.PATCH".
std::string xgboost_version();

}  // namespace nfcal
