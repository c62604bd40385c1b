// The nfcal command line tool, run as a user runs it: the real binary, real files, exit
// status, stdout and stderr. Failures must name the culprit and leave no output file behind.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nfcal/atomic_file.hpp"
#include "nfcal/datasets.hpp"
#include "nfcal/device.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/model_file.hpp"
#include "nfcal/npy.hpp"

#include "temp_folder_test.hpp"

namespace nfcal {
namespace {

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

class CliTest : public testing::TempFolderTest {
 protected:
  // Runs nfcal with `args` inside the test folder, capturing status, stdout and stderr.
  Outcome nfcal(const std::string& args) const {
    const std::string command =
        "cd '" + dir_ + "' && '" NFCAL_CLI_PATH "' " + args + " >.stdout 2>.stderr";
    const int raw = std::system(command.c_str());
    Outcome outcome;
    outcome.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    outcome.out = read_file_bytes(path(".stdout"));
    outcome.err = read_file_bytes(path(".stderr"));
    ::unlink(path(".stdout").c_str());
    ::unlink(path(".stderr").c_str());
    return outcome;
  }

  // Training rows from a built-in dataset, and a small flow fitted to them through the CLI.
  void fit_small_flow() {
    write_npy(path("train.npy"), make_dataset("blobs", 400, 1));
    const Outcome fit = nfcal(
        "fit --data train.npy --out flow.nfcal --layers 2 --hidden 8 --epochs 3 --threads 1 "
        "--seed 4");
    ASSERT_EQ(fit.status, 0) << fit.err;
  }

  // Expects a failure with status 1 whose single error line mentions every part.
  void expect_failure(const Outcome& outcome, const std::vector<std::string>& parts) const {
    EXPECT_EQ(outcome.status, 1) << outcome.err;
    EXPECT_EQ(outcome.err.rfind("nfcal: error: "), outcome.err.find("nfcal: error: "))
        << outcome.err;
    EXPECT_NE(outcome.err.find("nfcal: error: "), std::string::npos) << outcome.err;
    for (const std::string& part : parts) {
      EXPECT_NE(outcome.err.find(part), std::string::npos) << "'" << part << "' missing from:\n"
                                                           << outcome.err;
    }
  }
};

TEST_F(CliTest, EveryCommandHasHelp) {
  const Outcome top = nfcal("--help");
  EXPECT_EQ(top.status, 0);
  for (const std::string command :
       {"fit", "calibrate", "evaluate", "sample", "score", "run", "demo", "datasets", "info"}) {
    EXPECT_NE(top.out.find(command), std::string::npos) << command;
    const Outcome help = nfcal(command + " --help");
    EXPECT_EQ(help.status, 0) << command;
    EXPECT_NE(help.out.find("Usage: nfcal " + command), std::string::npos) << help.out;
  }
  EXPECT_NE(nfcal("fit --help").out.find("--learning-rate"), std::string::npos);
}

TEST_F(CliTest, UsageErrorsExitWithStatusTwoAndPointToHelp) {
  const Outcome unknown = nfcal("fit --data x.npy --out y.nfcal --no-such-option");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("nfcal: error: "), std::string::npos);
  EXPECT_NE(unknown.err.find("nfcal fit --help"), std::string::npos) << unknown.err;
  EXPECT_EQ(nfcal("").status, 2);
  EXPECT_EQ(nfcal("fit --data x.npy").status, 2);
  EXPECT_EQ(nfcal("fit --data x.npy --out y.nfcal --activation swish").status, 2);
}

TEST_F(CliTest, FitThenScoreThenSampleGiveTheLibrarysResultsInTheRightShapes) {
  fit_small_flow();
  const Maf flow = load_flow(path("flow.nfcal"));
  EXPECT_EQ(flow.dim(), 2);
  EXPECT_EQ(flow.config().layers, 2);
  EXPECT_EQ(flow.config().hidden, 8);

  // score: one value per row, the flow's own log densities.
  write_npy(path("test.npy"), make_dataset("blobs", 50, 2));
  const Outcome score = nfcal("score --model flow.nfcal --data test.npy --out logp.npy");
  ASSERT_EQ(score.status, 0) << score.err;
  EXPECT_NE(score.out.find("rows=50 mean_log_likelihood="), std::string::npos) << score.out;
  const NpyHeader header = parse_npy_header(read_file_bytes(path("logp.npy")), "logp.npy");
  EXPECT_EQ(header.shape, std::vector<std::uint64_t>{50});
  const Matrix<float> logp = read_npy_float(path("logp.npy"));
  EXPECT_EQ(logp.values(), flow.log_prob(read_npy_float(path("test.npy"))));

  // sample: (count, dim), the flow's own rows for the seed.
  const Outcome sample = nfcal("sample --model flow.nfcal --count 17 --out s.npy --seed 9");
  ASSERT_EQ(sample.status, 0) << sample.err;
  const Matrix<float> samples = read_npy_float(path("s.npy"));
  EXPECT_EQ(samples.rows(), 17u);
  EXPECT_EQ(samples.cols(), 2u);
  EXPECT_EQ(samples.values(), flow.sample(17, 9).values());
}

TEST_F(CliTest, CsvWorksForInputAndOutput) {
  fit_small_flow();
  std::ofstream(path("rows.csv")) << "x,y\n0.5,1.0\n-1,2\n";
  const Outcome score = nfcal("score --model flow.nfcal --data rows.csv --out logp.csv");
  ASSERT_EQ(score.status, 0) << score.err;
  const std::string text = read_file_bytes(path("logp.csv"));
  EXPECT_EQ(text.substr(0, 9), "log_prob\n");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
}

TEST_F(CliTest, FitLogsTheConfigurationOnceAndOneLinePerEpoch) {
  write_npy(path("train.npy"), make_dataset("ring", 300, 1));
  const Outcome fit = nfcal("fit --data train.npy --out f.nfcal --layers 1 --hidden 4 --epochs 4");
  ASSERT_EQ(fit.status, 0) << fit.err;
  std::size_t configs = 0;
  std::size_t epochs = 0;
  std::istringstream lines(fit.err);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("nfcal fit: data=train.npy rows=300 dim=2") != std::string::npos) ++configs;
    if (line.find("epoch=") != std::string::npos) ++epochs;
  }
  EXPECT_EQ(configs, 1u);
  EXPECT_EQ(epochs, 4u);
  EXPECT_NE(fit.out.find("wrote f.nfcal"), std::string::npos);
  EXPECT_EQ(fit.err.find("error"), std::string::npos);
}

TEST_F(CliTest, AMissingInputFileIsNamedAndNothingIsWritten) {
  const auto before = listing();
  expect_failure(nfcal("fit --data absent.npy --out flow.nfcal"), {"absent.npy", "No such file"});
  EXPECT_EQ(listing(), before);
}

TEST_F(CliTest, WrongColumnsAreNamedWithBothCounts) {
  fit_small_flow();
  write_npy(path("three.npy"), Matrix<double>(4, 3, 0.5));
  const auto before = listing();
  expect_failure(nfcal("score --model flow.nfcal --data three.npy --out logp.npy"),
                 {"three.npy", "3 columns", "model has 2"});
  EXPECT_EQ(listing(), before);
}

TEST_F(CliTest, ANanRowIsNamedByRowAndColumn) {
  Matrix<double> x = make_dataset("blobs", 100, 3);
  x(57, 1) = std::numeric_limits<double>::quiet_NaN();
  write_npy(path("nan.npy"), x);
  const auto before = listing();
  expect_failure(nfcal("fit --data nan.npy --out flow.nfcal --epochs 1"),
                 {"nan.npy", "row 57", "column 1", "NaN"});
  EXPECT_EQ(listing(), before);
}

TEST_F(CliTest, BadModelFilesAreRejectedWithTheirOwnMessages) {
  fit_small_flow();
  const std::string bytes = read_file_bytes(path("flow.nfcal"));
  write_file_atomically(path("cut.nfcal"), bytes.substr(0, bytes.size() - 100));
  write_file_atomically(path("empty.nfcal"), "");
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x01;
  write_file_atomically(path("flipped.nfcal"), flipped);
  const auto before = listing();

  expect_failure(nfcal("sample --model cut.nfcal --count 5 --out s.npy"),
                 {"cut.nfcal", "truncated"});
  expect_failure(nfcal("sample --model empty.nfcal --count 5 --out s.npy"),
                 {"empty.nfcal", "not an nfcal model file"});
  expect_failure(nfcal("sample --model train.npy --count 5 --out s.npy"),
                 {"train.npy", "not an nfcal model file"});
  expect_failure(nfcal("sample --model flipped.nfcal --count 5 --out s.npy"),
                 {"flipped.nfcal", "checksum mismatch"});
  EXPECT_EQ(listing(), before);
}

TEST_F(CliTest, UnwritableOutputPathsFailBeforeAnyWork) {
  fit_small_flow();
  ASSERT_EQ(::mkdir(path("taken.npy").c_str(), 0755), 0);
  const auto before = listing();
  expect_failure(nfcal("sample --model flow.nfcal --count 5 --out missing/s.npy"),
                 {"missing/s.npy", "does not exist"});
  expect_failure(nfcal("sample --model flow.nfcal --count 5 --out taken.npy"),
                 {"taken.npy", "is a folder"});
  expect_failure(nfcal("fit --data train.npy --out missing/f.nfcal --epochs 1"),
                 {"missing/f.nfcal"});
  expect_failure(nfcal("score --model flow.nfcal --data train.npy --out logp.txt"),
                 {"logp.txt", "use .npy or .csv"});
  EXPECT_EQ(listing(), before);
}

TEST_F(CliTest, AskingForCudaWithoutItIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  write_npy(path("train.npy"), make_dataset("blobs", 100, 1));
  expect_failure(nfcal("fit --data train.npy --out f.nfcal --device cuda"),
                 {"device 'cuda'", "--device cpu"});
  EXPECT_NE(nfcal("fit --help").out.find("--device"), std::string::npos);
}

TEST_F(CliTest, DatasetsListsEveryBuiltInDataset) {
  const Outcome outcome = nfcal("datasets");
  ASSERT_EQ(outcome.status, 0);
  for (const DatasetInfo& info : list_datasets()) {
    EXPECT_NE(outcome.out.find(info.name), std::string::npos) << info.name;
  }
}

TEST_F(CliTest, DemoWritesMetricsSamplesAndModel) {
  const Outcome demo =
      nfcal("demo --out result --train-size 400 --test-size 100 --epochs 3 --hidden 8 --seed 2");
  ASSERT_EQ(demo.status, 0) << demo.err;

  const nlohmann::json metrics =
      nlohmann::json::parse(read_file_bytes(path("result/metrics.json")));
  EXPECT_TRUE(metrics.is_object());
  EXPECT_EQ(read_npy_float(path("result/test.npy")).rows(), 100u);
  const Matrix<float> samples = read_npy_float(path("result/samples.npy"));
  EXPECT_EQ(samples.rows(), 100u);
  EXPECT_EQ(samples.cols(), 2u);
  EXPECT_EQ(load_flow(path("result/flow.nfcal")).dim(), 2);
}

TEST_F(CliTest, DemoRefusesAnOutputFolderBlockedByAFile) {
  write_file_atomically(path("blocked"), "a file");
  expect_failure(nfcal("demo --out blocked --epochs 1"), {"blocked"});
}

}  // namespace
}  // namespace nfcal
