// Loading and splitting the rows of a run.
#include "cli/run_data.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "nfcal/datasets.hpp"
#include "nfcal/error.hpp"
#include "nfcal/image_data.hpp"
#include "nfcal/uci_data.hpp"

#include "cli/common.hpp"

namespace nfcal::cli {
namespace {

constexpr std::size_t kBuiltinTrainRows = 8000;
// Test rows of a generated set cost nothing to draw, and the share of the gap closed that they
// measure needs many: its standard error on two moons is about 10 points at 2,000 rows.
constexpr std::size_t kBuiltinTestRows = 20000;
constexpr std::size_t kMinTrainRows = 10;
constexpr int kFashionSide = 28;

// `requested` rows when given (0: all `available`), checked against what there is.
std::size_t rows_wanted(long long requested, std::size_t available, const std::string& option,
                        const std::string& what) {
  if (requested < 0) throw InvalidArgument(option + " must not be negative");
  const auto wanted = static_cast<std::size_t>(requested);
  if (wanted > available) {
    throw InvalidArgument(option + " " + std::to_string(wanted) + ": " + what + " has only " +
                          std::to_string(available) + " rows");
  }
  return wanted == 0 ? available : wanted;
}

// The rows of x at the given indices, in that order.
Matrix<float> take_rows(const Matrix<float>& x, const std::vector<std::size_t>& indices) {
  Matrix<float> out(indices.size(), x.cols());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::copy(x.row(indices[i]), x.row(indices[i]) + x.cols(), out.row(i));
  }
  return out;
}

// SplitMix64's finalizer: a well-mixed 64-bit key for (seed, index).
std::uint64_t mix(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed * 0x9e3779b97f4a7c15ull + index + 0x632be59bd9b4e019ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A permutation of 0..n-1 fixed by seed: each index gets a keyed random key, then sort.
std::vector<std::size_t> seeded_permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = mix(seed, i);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&keys](std::size_t a, std::size_t b) {
    return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
  });
  return order;
}

// A built-in generated dataset: one seeded draw, split into train and test rows.
RunData builtin_data(const RunOptions& options, const DatasetInfo& info) {
  const std::size_t n_train =
      options.train_size > 0 ? static_cast<std::size_t>(options.train_size) : kBuiltinTrainRows;
  const std::size_t n_test =
      options.test_size > 0 ? static_cast<std::size_t>(options.test_size) : kBuiltinTestRows;
  // Generated in double and kept in float, so both copies are held at once.
  check_rows_fit_in_memory("--train-size plus --test-size", n_train + n_test,
                           static_cast<std::size_t>(info.dim), sizeof(double) + sizeof(float));
  const Matrix<double> all = make_dataset(info.name, n_train + n_test, options.common.seed);

  RunData data;
  data.name = info.name;
  data.source = "built-in dataset '" + info.name + "', " + info.description +
                "; generated from seed " + std::to_string(options.common.seed);
  data.train = all.slice_rows(0, n_train).cast<float>();
  data.test = all.slice_rows(n_train, n_test).cast<float>();
  if (info.known_density) {
    const std::string name = info.name;
    data.true_log_prob = [name](const Matrix<double>& x) { return dataset_log_prob(name, x); };
  }
  return data;
}

// Fashion-MNIST: dequantized, in logit space; train rows from the 60,000, test rows from
// the 10,000 (the first ones of each, or all).
RunData fashion_data(const RunOptions& options) {
  const std::string folder = options.data_dir.empty() ? fashion_mnist_folder() : options.data_dir;
  const IdxArray train_images = read_fashion_mnist_images(folder, "train");
  const IdxArray test_images = read_fashion_mnist_images(folder, "t10k");
  const std::size_t n_train =
      rows_wanted(options.train_size, train_images.items(), "--train-size", folder);
  const std::size_t n_test =
      rows_wanted(options.test_size, test_images.items(), "--test-size", folder);

  RunData data;
  const LogitTransform transform;
  data.name = "fashion-mnist";
  data.source = "Fashion-MNIST from " + folder + " (dequantized, logit space, lambda 1e-6)";
  data.train = transform.forward(train_images, options.common.seed, 0, n_train);
  data.test = transform.forward(test_images, options.common.seed + 1, 0, n_test);
  data.image_height = data.image_width = kFashionSide;
  data.logit_lambda = transform.lambda;
  return data;
}

// A MAF benchmark set from the .npy splits scripts/convert_maf_datasets.py writes.
RunData uci_data(const RunOptions& options, const std::string& name) {
  const std::string folder = options.data_dir.empty() ? maf_dataset_folder(name) : options.data_dir;
  const MafDataset set = load_maf_dataset(name, folder);
  RunData data;
  data.name = name;
  data.source =
      "MAF benchmark set " + name + " from " + folder + " (published preprocessing and splits)";
  const std::size_t n_train =
      rows_wanted(options.train_size, set.train.rows(), "--train-size", name + " training split");
  const std::size_t n_test =
      rows_wanted(options.test_size, set.test.rows(), "--test-size", name + " test split");
  data.train = set.train.slice_rows(0, n_train);
  data.validation = set.validation;
  data.test = set.test.slice_rows(0, n_test);
  return data;
}

// The user's file: all rows, or a seeded split into training and test rows.
RunData file_data(const RunOptions& options) {
  check_table_extension(options.data, "--data");
  RunData data;
  data.name = options.data;
  data.source = "file " + options.data;
  Matrix<float> rows = load_rows(options.data, 0, "training data");
  warn_about_constant_columns(rows, options.data);
  if (!options.test.empty()) {
    check_table_extension(options.test, "--test");
    data.test = load_rows(options.test, static_cast<int>(rows.cols()), "test data");
    data.train = std::move(rows);
    data.source += ", test rows from " + options.test;
  } else {
    if (!(options.test_fraction > 0 && options.test_fraction < 1)) {
      throw InvalidArgument("--test-fraction must be in (0, 1)");
    }
    const auto n_test = static_cast<std::size_t>(options.test_fraction * rows.rows());
    if (rows.rows() < kMinTrainRows + 2) {
      throw DataError(options.data + ": " + std::to_string(rows.rows()) +
                      " rows are too few to split into training and test rows; give at least " +
                      std::to_string(kMinTrainRows + 2) + " rows, or --test FILE");
    }
    if (n_test < 2 || rows.rows() - n_test < kMinTrainRows) {
      throw DataError("--test-fraction " + format_number(options.test_fraction) + " of the " +
                      std::to_string(rows.rows()) + " rows of " + options.data + " gives " +
                      std::to_string(n_test) + " test and " + std::to_string(rows.rows() - n_test) +
                      " training rows; at least 2 and " + std::to_string(kMinTrainRows) +
                      " are needed");
    }
    const std::vector<std::size_t> order = seeded_permutation(rows.rows(), options.common.seed);
    const std::vector<std::size_t> test_idx(order.begin(), order.begin() + n_test);
    const std::vector<std::size_t> train_idx(order.begin() + n_test, order.end());
    data.test = take_rows(rows, test_idx);
    data.train = take_rows(rows, train_idx);
    data.source += ", split by seed " + std::to_string(options.common.seed) + " (" +
                   std::to_string(n_test) + " test rows)";
  }
  if (!options.validation.empty()) {
    check_table_extension(options.validation, "--validation");
    data.validation =
        load_rows(options.validation, static_cast<int>(data.train.cols()), "validation data");
  }
  return data;
}

}  // namespace

RunData load_run_data(const RunOptions& options) {
  // Exactly one source of rows.
  if (options.data.empty() == options.dataset.empty()) {
    throw InvalidArgument("give either --data FILE or --dataset NAME (see nfcal datasets)");
  }
  RunData data;
  if (!options.data.empty()) {
    data = file_data(options);
  } else if (options.dataset == "fashion-mnist") {
    data = fashion_data(options);
  } else if (is_maf_dataset(options.dataset)) {
    data = uci_data(options, options.dataset);
  } else {
    data = builtin_data(options, dataset_info(options.dataset));
  }
  if (data.train.rows() < kMinTrainRows) {
    throw DataError(data.name + ": " + std::to_string(data.train.rows()) +
                    " training rows; a run needs at least " + std::to_string(kMinTrainRows));
  }
  return data;
}

}  // namespace nfcal::cli
