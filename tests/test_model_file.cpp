// The model file container and flow files: exact round trips, and one distinct, named error
// for every kind of bad file.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/model_file.hpp"

#include "maf_test_support.hpp"
#include "temp_folder_test.hpp"

namespace nfcal {
namespace {

using Kind = ModelFormatError::Kind;
using Json = nlohmann::json;

class ModelFileTest : public testing::TempFolderTest {};

// The kind and message of the ModelFormatError that `action` throws; fails when none is.
struct Failure {
  Kind kind = Kind::kNotAModel;
  std::string message;
};
Failure failure_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const ModelFormatError& error) {
    return {error.kind(), error.what()};
  }
  ADD_FAILURE() << "no ModelFormatError";
  return {};
}
// The message of decoding a flow file that must be refused as corrupted.
std::string corrupted_flow_message(const ModelFile& bad) {
  const Failure failure = failure_of([&] { decode_flow(bad); });
  EXPECT_EQ(failure.kind, Kind::kCorrupted) << failure.message;
  return failure.message;
}
Failure decode_failure(const std::string& bytes) {
  return failure_of([&] { decode_model_file(bytes, "m.nfcal"); });
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A container with binary sections, including an empty one and one with zero bytes inside.
ModelFile sample_container() {
  ModelFile file;
  file.kind = "test-kind";
  file.header_json = R"({"answer": 42, "names": ["a", "b"]})";
  file.sections = {{"alpha", std::string("\0\1\2\3\xff", 5)}, {"empty", ""}, {"text", "hello"}};
  return file;
}

// A flow far from its initial state: every parameter and buffer is set from a seed, with
// positive running variances, and a standardization.
Maf perturbed_flow(const MafConfig& config, std::uint64_t seed) {
  Maf flow(config);
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<float> uniform(-0.2f, 0.2f);
  const std::vector<bool> live = testing::unmasked_parameters(flow);
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (live[i]) flow.parameters()[i] = uniform(engine);
  }
  for (float& b : flow.buffers()) b = 1.0f + uniform(engine);
  Standardization standardization;
  for (int d = 0; d < config.dim; ++d) {
    standardization.shift.push_back(0.1 * d - 0.3);
    standardization.scale.push_back(0.5 + 0.25 * d);
  }
  flow.set_standardization(standardization);
  return flow;
}

MafConfig unusual_config() {
  MafConfig config;
  config.dim = 3;
  config.layers = 3;
  config.hidden = 16;
  config.hidden_layers = 2;
  config.activation = Activation::kTanh;
  config.ordering = Ordering::kRandom;
  config.batch_norm = true;
  config.max_log_scale = 4.5;
  config.seed = 0xDEADBEEFCAFEF00Dull;  // beyond double's exact integers
  return config;
}

// A flow file re-encoded after `edit` changed its header.
ModelFile edited_header(const ModelFile& file, const std::function<void(Json&)>& edit) {
  ModelFile copy = file;
  Json header = Json::parse(copy.header_json);
  edit(header);
  copy.header_json = header.dump();
  return decode_model_file(encode_model_file(copy), "edited.nfcal");
}

// --- The container --------------------------------------------------------------------------

TEST_F(ModelFileTest, ContainerRoundTripsHeaderAndSectionsExactly) {
  const ModelFile back = decode_model_file(encode_model_file(sample_container()), "m.nfcal");
  EXPECT_EQ(back.kind, "test-kind");
  EXPECT_EQ(back.source, "m.nfcal");
  EXPECT_EQ(back.sections, sample_container().sections);
  const Json header = Json::parse(back.header_json);
  EXPECT_EQ(header["answer"], 42);
  EXPECT_EQ(header["kind"], "test-kind");
  EXPECT_TRUE(header["nfcal_version"].is_string());
  EXPECT_EQ(back.section("text"), "hello");
  EXPECT_FALSE(back.has_section("missing"));
  EXPECT_EQ(failure_of([&] { back.section("missing"); }).kind, Kind::kCorrupted);
}

TEST_F(ModelFileTest, ContainerStartsWithMagicVersionAndEndsWithZlibCrc) {
  const std::string bytes = encode_model_file(sample_container());
  EXPECT_EQ(bytes.substr(0, 8), "NFCALMDL");
  EXPECT_EQ(bytes.substr(8, 4), std::string("\x01\0\0\0", 4));

  // CRC-32 of "123456789" is 0xCBF43926 (the standard check value); the same routine is
  // applied here to every byte but the last four and compared with them.
  auto crc = [](const std::string& data) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (unsigned char byte : data) {
      c ^= byte;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
  };
  ASSERT_EQ(crc("123456789"), 0xCBF43926u);
  const std::uint32_t expected = crc(bytes.substr(0, bytes.size() - 4));
  std::uint32_t stored = 0;
  for (int b = 0; b < 4; ++b) {
    stored |= std::uint32_t(static_cast<unsigned char>(bytes[bytes.size() - 4 + b])) << (8 * b);
  }
  EXPECT_EQ(stored, expected);
}

TEST_F(ModelFileTest, EmptyFilesJsonFilesAndWrongMagicAreNotModels) {
  const Failure empty = decode_failure("");
  EXPECT_EQ(empty.kind, Kind::kNotAModel);
  EXPECT_TRUE(contains(empty.message, "m.nfcal: not an nfcal model file (it is empty)"));

  const Failure json = decode_failure(R"({"kind": "flow", "layers": 5})");
  EXPECT_EQ(json.kind, Kind::kNotAModel);
  EXPECT_TRUE(contains(json.message, "does not start with \"NFCALMDL\"")) << json.message;

  std::string bytes = encode_model_file(sample_container());
  bytes[0] = 'M';
  EXPECT_EQ(decode_failure(bytes).kind, Kind::kNotAModel);
  EXPECT_EQ(decode_failure("NFCAL").kind, Kind::kNotAModel);
}

TEST_F(ModelFileTest, AnotherFormatVersionIsNamedWithTheOneThisBuildReads) {
  std::string bytes = encode_model_file(sample_container());
  bytes[8] = 2;
  const Failure failure = decode_failure(bytes);
  EXPECT_EQ(failure.kind, Kind::kUnsupportedVersion);
  EXPECT_TRUE(contains(failure.message, "format version 2 is not supported")) << failure.message;
  EXPECT_TRUE(contains(failure.message, "reads version 1")) << failure.message;
}

TEST_F(ModelFileTest, EveryTruncationPointIsReportedAsTruncated) {
  const std::string bytes = encode_model_file(sample_container());
  for (std::size_t cut = 8; cut < bytes.size(); ++cut) {
    const Failure failure = decode_failure(bytes.substr(0, cut));
    EXPECT_EQ(failure.kind, Kind::kTruncated) << "cut at " << cut << ": " << failure.message;
  }
  const Failure late = decode_failure(bytes.substr(0, bytes.size() - 2));
  EXPECT_TRUE(contains(late.message, "needs at least " + std::to_string(bytes.size()) +
                                         " bytes but the file has " +
                                         std::to_string(bytes.size() - 2)))
      << late.message;
}

TEST_F(ModelFileTest, EverySingleFlippedByteIsDetected) {
  const std::string bytes = encode_model_file(sample_container());
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    std::string damaged = bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
    EXPECT_THROW(decode_model_file(damaged, "m.nfcal"), ModelFormatError) << "byte " << at;
  }
}

TEST_F(ModelFileTest, AFlippedDataByteIsAChecksumMismatch) {
  std::string bytes = encode_model_file(sample_container());
  bytes[bytes.size() - 6] ^= 0x01;  // inside the last section's data
  const Failure failure = decode_failure(bytes);
  EXPECT_EQ(failure.kind, Kind::kCorrupted);
  EXPECT_TRUE(contains(failure.message, "checksum mismatch")) << failure.message;
}

TEST_F(ModelFileTest, AppendedBytesAreCorruption) {
  std::string bytes = encode_model_file(sample_container());
  bytes += "tail";
  EXPECT_EQ(decode_failure(bytes).kind, Kind::kCorrupted);
}

TEST_F(ModelFileTest, EncodingRejectsBadHeadersAndDuplicateSections) {
  ModelFile file = sample_container();
  file.header_json = "[1, 2]";
  EXPECT_THROW(encode_model_file(file), InvalidArgument);
  file.header_json = "{";
  EXPECT_THROW(encode_model_file(file), InvalidArgument);
  file = sample_container();
  file.sections.push_back({"alpha", "again"});
  EXPECT_THROW(encode_model_file(file), InvalidArgument);
  file = sample_container();
  file.kind = "";
  EXPECT_THROW(encode_model_file(file), InvalidArgument);
}

TEST_F(ModelFileTest, WriteAndReadGoThroughFilesAtomically) {
  write_model_file(path("c.nfcal"), sample_container());
  EXPECT_EQ(read_model_file(path("c.nfcal")).sections, sample_container().sections);
  EXPECT_THROW(write_model_file(path("no/such/folder.nfcal"), sample_container()), FileError);
  EXPECT_THROW(read_model_file(path("absent.nfcal")), FileError);
}

// --- Flows ----------------------------------------------------------------------------------

TEST_F(ModelFileTest, FlowsRoundTripBitExactly) {
  const Maf flow = perturbed_flow(unusual_config(), 7);
  save_flow(path("f.nfcal"), flow, R"({"data": "train.npy"})");
  const Maf back = load_flow(path("f.nfcal"));

  EXPECT_TRUE(back.config() == flow.config());
  EXPECT_EQ(back.config().seed, 0xDEADBEEFCAFEF00Dull);
  ASSERT_EQ(back.parameters().size(), flow.parameters().size());
  EXPECT_EQ(std::memcmp(back.parameters().data(), flow.parameters().data(),
                        flow.parameters().size() * sizeof(float)),
            0);
  EXPECT_EQ(back.buffers(), flow.buffers());
  EXPECT_EQ(back.standardization().shift, flow.standardization().shift);
  EXPECT_EQ(back.standardization().scale, flow.standardization().scale);

  // The same numbers give the same densities, to the bit.
  const Matrix<float> x(4, 3,
                        std::vector<float>{0.1f, -0.5f, 1.0f, 2.0f, 0.0f, -1.0f, 0.3f, 0.3f, 0.3f,
                                           -2.0f, 1.5f, 0.7f});
  EXPECT_EQ(back.log_prob(x), flow.log_prob(x));
}

TEST_F(ModelFileTest, FlowsWithoutStandardizationStayWithout) {
  MafConfig config;
  config.dim = 2;
  config.hidden = 8;
  const Maf back =
      decode_flow(decode_model_file(encode_model_file(encode_flow(Maf(config))), "plain.nfcal"));
  EXPECT_FALSE(back.standardization().active());
  EXPECT_TRUE(back.config() == config);
}

TEST_F(ModelFileTest, FlowFilesDescribeThemselvesInTheHeader) {
  const ModelFile file = encode_flow(perturbed_flow(unusual_config(), 1), R"({"note": "x"})");
  const Json header = Json::parse(file.header_json);
  EXPECT_EQ(header["config"]["activation"], "tanh");
  EXPECT_EQ(header["config"]["ordering"], "random");
  EXPECT_EQ(header["metadata"]["note"], "x");
  EXPECT_EQ(header["tensors"].size(), Maf(unusual_config()).tensors().size());
  EXPECT_THROW(encode_flow(Maf(unusual_config()), "[]"), InvalidArgument);
}

TEST_F(ModelFileTest, AModelOfAnotherKindIsRejectedAsWrongKind) {
  write_model_file(path("other.nfcal"), sample_container());
  const Failure failure = failure_of([&] { load_flow(path("other.nfcal")); });
  EXPECT_EQ(failure.kind, Kind::kWrongKind);
  EXPECT_TRUE(contains(failure.message, "kind 'test-kind', expected 'flow'")) << failure.message;
}

TEST_F(ModelFileTest, BadFlowFilesOnDiskGetTheirOwnErrorKinds) {
  const std::string bytes = encode_model_file(encode_flow(perturbed_flow(unusual_config(), 3)));
  write_file_atomically(path("cut.nfcal"), bytes.substr(0, bytes.size() / 2));
  write_file_atomically(path("empty.nfcal"), "");
  write_file_atomically(path("config.json"), R"({"dim": 2})");
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  write_file_atomically(path("flipped.nfcal"), flipped);

  EXPECT_EQ(failure_of([&] { load_flow(path("cut.nfcal")); }).kind, Kind::kTruncated);
  EXPECT_EQ(failure_of([&] { load_flow(path("empty.nfcal")); }).kind, Kind::kNotAModel);
  EXPECT_EQ(failure_of([&] { load_flow(path("config.json")); }).kind, Kind::kNotAModel);
  EXPECT_EQ(failure_of([&] { load_flow(path("flipped.nfcal")); }).kind, Kind::kCorrupted);
  EXPECT_TRUE(
      contains(failure_of([&] { load_flow(path("cut.nfcal")); }).message, path("cut.nfcal")));
}

TEST_F(ModelFileTest, FlowHeadersThatDisagreeWithTheConfigurationAreNamed) {
  const ModelFile file = encode_flow(perturbed_flow(unusual_config(), 5));

  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["config"].erase("hidden"); })),
      "config has no field 'hidden'"));
  EXPECT_TRUE(contains(corrupted_flow_message(edited_header(
                           file, [](Json& h) { h["config"]["activation"] = "swish"; })),
                       "swish"));
  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["config"]["dim"] = "3"; })),
      "config field 'dim' has the wrong type"));
  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["config"]["layers"] = 0; })),
      "config:"));
  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["tensors"][2]["rows"] = 99; })),
      "tensor 2"));
  EXPECT_TRUE(
      contains(corrupted_flow_message(edited_header(file, [](Json& h) { h["tensors"].erase(0); })),
               "tensors"));
  // A different hidden size changes every shape: the parameters no longer fit.
  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["config"]["hidden"] = 8; })),
      "tensor"));
}

TEST_F(ModelFileTest, FlowHeaderCountsTypesAndFlagsMustMatchTheSections) {
  const ModelFile file = encode_flow(perturbed_flow(unusual_config(), 5));

  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["num_parameters"] = 7; })),
      "'num_parameters' is 7"));
  EXPECT_TRUE(
      contains(corrupted_flow_message(edited_header(file, [](Json& h) { h["num_buffers"] = -1; })),
               "'num_buffers' is -1"));
  EXPECT_TRUE(contains(corrupted_flow_message(edited_header(
                           file, [](Json& h) { h["value_types"]["parameters"] = "<f8"; })),
                       "section 'parameters' is stored as \"<f8\""));
  EXPECT_TRUE(
      contains(corrupted_flow_message(edited_header(file, [](Json& h) { h["value_types"] = 4; })),
               "'value_types' is not an object"));
  // Dropping the flag would silently drop the standardization the sections still hold.
  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["standardization"] = false; })),
      "the header says none"));
  EXPECT_TRUE(contains(
      corrupted_flow_message(edited_header(file, [](Json& h) { h["standardization"] = "x"; })),
      "'standardization' is not true/false"));
  // A scale bound so large that e^B overflows float is not a flow nfcal could have written.
  EXPECT_TRUE(contains(corrupted_flow_message(edited_header(
                           file, [](Json& h) { h["config"]["max_log_scale"] = 1e300; })),
                       "max_log_scale"));

  EXPECT_NO_THROW(decode_flow(edited_header(file, [](Json& h) {
    h.erase("num_parameters");
    h.erase("value_types");
  })));
}

TEST_F(ModelFileTest, FlowSectionsOfTheWrongSizeOrWithNonFiniteValuesAreNamed) {
  const ModelFile file = encode_flow(perturbed_flow(unusual_config(), 9));
  auto with_section = [&](const std::string& name, const std::string& data) {
    ModelFile copy = file;
    for (auto& entry : copy.sections) {
      if (entry.first == name) entry.second = data;
    }
    return decode_model_file(encode_model_file(copy), "s.nfcal");
  };
  auto failure = [](const ModelFile& bad) { return failure_of([&] { decode_flow(bad); }); };

  const std::string& parameters = file.section("parameters");
  const Failure short_parameters = failure(with_section("parameters", parameters.substr(4)));
  EXPECT_EQ(short_parameters.kind, Kind::kCorrupted);
  EXPECT_TRUE(contains(short_parameters.message, "section 'parameters' has"));

  std::string nan_parameters = parameters;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&nan_parameters[8], &nan, sizeof(float));
  EXPECT_TRUE(contains(failure(with_section("parameters", nan_parameters)).message,
                       "section 'parameters' value 2 is nan"));

  std::string zero_scale = file.section("standardization.scale");
  std::memset(&zero_scale[8], 0, sizeof(double));
  EXPECT_TRUE(contains(failure(with_section("standardization.scale", zero_scale)).message,
                       "standardization scale 1 is not positive"));

  const Maf probe(unusual_config());
  std::string bad_variance = file.section("buffers");
  const float negative = -1.0f;
  std::memcpy(&bad_variance[probe.batch_norm_layers()[0].running_var * sizeof(float)], &negative,
              sizeof(float));
  EXPECT_TRUE(contains(failure(with_section("buffers", bad_variance)).message,
                       "running variance 0 is not positive"));

  // A non-zero weight where the autoregressive mask forbids one breaks normalization.
  const std::vector<bool> live = testing::unmasked_parameters(probe);
  const std::size_t masked =
      static_cast<std::size_t>(std::find(live.begin(), live.end(), false) - live.begin());
  std::string unmasked = parameters;
  const float one = 1.0f;
  std::memcpy(&unmasked[masked * sizeof(float)], &one, sizeof(float));
  const Failure mask_failure = failure(with_section("parameters", unmasked));
  EXPECT_EQ(mask_failure.kind, Kind::kCorrupted);
  EXPECT_TRUE(contains(mask_failure.message, "non-zero masked weight")) << mask_failure.message;

  ModelFile missing = file;
  missing.sections.erase(missing.sections.begin());
  EXPECT_TRUE(contains(failure(decode_model_file(encode_model_file(missing), "s.nfcal")).message,
                       "no section 'parameters'"));
}

}  // namespace
}  // namespace nfcal
