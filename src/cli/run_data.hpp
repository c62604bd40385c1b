// The rows a run works on: a built-in dataset, an installable one (Fashion-MNIST, the MAF
// benchmark sets), or the user's own files, split into training, validation and test rows.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nfcal/matrix.hpp"

#include "cli/run_pipeline.hpp"

namespace nfcal::cli {

struct RunData {
  std::string name;                       // dataset name or file name
  std::string source;                     // a sentence saying where the rows came from
  Matrix<float> train, validation, test;  // validation empty: fit() splits its own
  std::vector<std::string> columns;       // names for pictures (may be empty)
  // The exact density of the data, when known (empty otherwise).
  std::function<std::vector<double>(const Matrix<double>&)> true_log_prob;
  // Images modelled in logit space: shape and the transform's lambda (0: not images).
  int image_height = 0, image_width = 0;
  double logit_lambda = 0;
};

/// Loads and splits the data that `options` name. Throws FileError/DataError naming the file,
/// row or column at fault, InvalidArgument naming the option.
RunData load_run_data(const RunOptions& options);

}  // namespace nfcal::cli
