// Flows inside model files: the header carries the configuration and tensor layout, sections
// carry the numbers. Loading rebuilds the flow from its configuration and checks the file
// against it, so a damaged or hand-edited file is named precisely instead of misread.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nfcal/atomic_file.hpp"
#include "nfcal/error.hpp"
#include "nfcal/maf.hpp"
#include "nfcal/model_file.hpp"

#include "io/byte_order.hpp"

namespace nfcal {
namespace {

using Json = nlohmann::json;
using Kind = ModelFormatError::Kind;

constexpr const char* kParameters = "parameters";
constexpr const char* kBuffers = "buffers";
constexpr const char* kShift = "standardization.shift";
constexpr const char* kScale = "standardization.scale";

// A kCorrupted error naming the file.
ModelFormatError corrupted(const ModelFile& file, const std::string& what) {
  return ModelFormatError(Kind::kCorrupted, file.source + ": bad flow file: " + what);
}

// Parses a JSON object given as text, naming `what` when it is not one.
Json parse_object(const std::string& text, const std::string& what) {
  Json value;
  try {
    value = Json::parse(text.empty() ? "{}" : text);
  } catch (const Json::exception& error) {
    throw InvalidArgument(what + ": not valid JSON (" + error.what() + ")");
  }
  if (!value.is_object()) throw InvalidArgument(what + ": not a JSON object");
  return value;
}

Json config_to_json(const MafConfig& config) {
  return Json{{"dim", config.dim},
              {"layers", config.layers},
              {"hidden", config.hidden},
              {"hidden_layers", config.hidden_layers},
              {"activation", to_string(config.activation)},
              {"ordering", to_string(config.ordering)},
              {"batch_norm", config.batch_norm},
              {"max_log_scale", config.max_log_scale},
              {"seed", config.seed}};
}

// One field of the stored configuration, with its type checked.
template <typename T>
T config_field(const ModelFile& file, const Json& config, const char* name) {
  if (!config.contains(name)) {
    throw corrupted(file, "config has no field '" + std::string(name) + "'");
  }
  try {
    return config.at(name).get<T>();
  } catch (const Json::exception&) {
    throw corrupted(file, "config field '" + std::string(name) + "' has the wrong type");
  }
}

MafConfig config_from_json(const ModelFile& file, const Json& config) {
  // Every field is required: a file says exactly which flow it holds.
  MafConfig out;
  out.dim = config_field<int>(file, config, "dim");
  out.layers = config_field<int>(file, config, "layers");
  out.hidden = config_field<int>(file, config, "hidden");
  out.hidden_layers = config_field<int>(file, config, "hidden_layers");
  out.batch_norm = config_field<bool>(file, config, "batch_norm");
  out.max_log_scale = config_field<double>(file, config, "max_log_scale");
  out.seed = config_field<std::uint64_t>(file, config, "seed");

  // Enum names and ranges go through the library's own parsers and validation.
  try {
    out.activation = parse_activation(config_field<std::string>(file, config, "activation"));
    out.ordering = parse_ordering(config_field<std::string>(file, config, "ordering"));
    out.validate();
  } catch (const InvalidArgument& error) {
    throw corrupted(file, std::string("config: ") + error.what());
  }
  return out;
}

// Little-endian bytes of a vector.
template <typename T>
std::string to_bytes(const std::vector<T>& values) {
  std::string bytes;
  io::append_little_endian(&bytes, values.data(), values.size());
  return bytes;
}

// A section decoded into exactly `count` values of T, each finite.
template <typename T>
std::vector<T> read_values(const ModelFile& file, const std::string& name, std::size_t count) {
  const std::string& bytes = file.section(name);
  if (bytes.size() != count * sizeof(T)) {
    throw corrupted(file, "section '" + name + "' has " + std::to_string(bytes.size()) +
                              " bytes, expected " + std::to_string(count * sizeof(T)) + " (" +
                              std::to_string(count) + " values)");
  }
  std::vector<T> values(count);
  io::read_little_endian(bytes.data(), count, values.data());
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) {
      throw corrupted(file, "section '" + name + "' value " + std::to_string(i) + " is " +
                                std::to_string(values[i]));
    }
  }
  return values;
}

// The stored tensor list must match the freshly built flow's, name by name.
void check_tensors(const ModelFile& file, const Json& header, const Maf& flow) {
  if (!header.contains("tensors") || !header["tensors"].is_array()) {
    throw corrupted(file, "the header has no tensor list");
  }
  const Json& stored = header["tensors"];
  const std::vector<TensorSpec>& expected = flow.tensors();
  if (stored.size() != expected.size()) {
    throw corrupted(file, "the header lists " + std::to_string(stored.size()) +
                              " tensors, the configuration makes " +
                              std::to_string(expected.size()));
  }
  for (std::size_t t = 0; t < expected.size(); ++t) {
    const TensorSpec& spec = expected[t];
    const Json& entry = stored[t];
    bool same = false;
    try {
      same = entry.is_object() && entry.value("name", "") == spec.name &&
             entry.value("rows", -1) == spec.rows && entry.value("cols", -1) == spec.cols &&
             entry.value("offset", ~std::uint64_t(0)) == spec.offset;
    } catch (const Json::exception&) {
      same = false;  // a field of the wrong type
    }
    if (!same) {
      throw corrupted(file, "tensor " + std::to_string(t) + " is " + entry.dump() +
                                ", the configuration makes '" + spec.name + "' (" +
                                std::to_string(spec.rows) + " x " + std::to_string(spec.cols) +
                                " at offset " + std::to_string(spec.offset) + ")");
    }
  }
}

// Batch-norm running variances divide; they must be positive.
void check_running_variances(const ModelFile& file, const Maf& flow) {
  for (std::size_t l = 0; l < flow.batch_norm_layers().size(); ++l) {
    const std::size_t offset = flow.batch_norm_layers()[l].running_var;
    for (int d = 0; d < flow.dim(); ++d) {
      if (!(flow.buffers()[offset + static_cast<std::size_t>(d)] > 0)) {
        throw corrupted(file, "batch-norm layer " + std::to_string(l) + " running variance " +
                                  std::to_string(d) + " is not positive");
      }
    }
  }
}

// The autoregressive property rests on masked weights being exactly zero; a file that breaks
// it would give a density that is not normalized, so it is rejected rather than repaired.
void check_masked_weights(const ModelFile& file, const Maf& flow) {
  const auto& tensors = flow.tensors();
  const auto& values = flow.parameters();
  auto check_rows = [&](const TensorSpec& w, auto prefix_of_row) {
    for (int r = 0; r < w.rows; ++r) {
      for (int c = prefix_of_row(r); c < w.cols; ++c) {
        if (values[w.offset + static_cast<std::size_t>(r) * w.cols + c] != 0.0f) {
          throw corrupted(file, "tensor " + w.name + " has a non-zero masked weight at row " +
                                    std::to_string(r) + ", column " + std::to_string(c));
        }
      }
    }
  };
  for (const MadeLayout& made : flow.made_layers()) {
    for (std::size_t l = 0; l < made.weights.size(); ++l) {
      check_rows(tensors[made.weights[l]], [&](int r) { return made.prefix[l][r]; });
    }
    check_rows(tensors[made.out_weight], [&](int r) { return made.out_prefix[r % flow.dim()]; });
  }
}

// The header's own counts and value types, when present, must be the ones this reader assumes,
// or the sections would be read as something they are not.
void check_counts_and_types(const ModelFile& file, const Json& header, const Maf& flow) {
  const std::pair<const char*, std::size_t> counts[] = {
      {"num_parameters", flow.parameters().size()}, {"num_buffers", flow.buffers().size()}};
  for (const auto& [key, expected] : counts) {
    if (!header.contains(key)) continue;
    const Json& stored = header[key];
    if (!stored.is_number_unsigned() || stored.get<std::size_t>() != expected) {
      throw corrupted(file, "header field '" + std::string(key) + "' is " + stored.dump() +
                                ", the configuration makes " + std::to_string(expected));
    }
  }
  if (!header.contains("value_types")) return;
  if (!header["value_types"].is_object()) {
    throw corrupted(file, "header field 'value_types' is not an object");
  }
  const std::pair<const char*, const char*> types[] = {
      {kParameters, "<f4"}, {kBuffers, "<f4"}, {kShift, "<f8"}, {kScale, "<f8"}};
  for (const auto& [section, type] : types) {
    const Json& stored = header["value_types"].value(section, Json(type));
    if (stored != type) {
      throw corrupted(file, "section '" + std::string(section) + "' is stored as " + stored.dump() +
                                "; this reader takes " + type);
    }
  }
}

// Standardization is optional; when present both halves are, with positive scales, and when
// absent neither is, so a damaged flag cannot silently drop them.
void read_standardization(const ModelFile& file, const Json& header, Maf* flow) {
  const Json& flag = header.value("standardization", Json(false));
  if (!flag.is_boolean()) throw corrupted(file, "header field 'standardization' is not true/false");
  if (!flag.get<bool>()) {
    if (file.has_section(kShift) || file.has_section(kScale)) {
      throw corrupted(file, "standardization sections are present but the header says none");
    }
    return;
  }
  const std::size_t dim = static_cast<std::size_t>(flow->dim());
  Standardization standardization;
  standardization.shift = read_values<double>(file, kShift, dim);
  standardization.scale = read_values<double>(file, kScale, dim);
  for (std::size_t d = 0; d < dim; ++d) {
    if (!(standardization.scale[d] > 0)) {
      throw corrupted(file, "standardization scale " + std::to_string(d) + " is not positive");
    }
  }
  flow->set_standardization(std::move(standardization));
}

}  // namespace

ModelFile encode_flow(const Maf& flow, const std::string& metadata_json) {
  // The header describes everything needed to rebuild and check the flow.
  Json header;
  header["config"] = config_to_json(flow.config());
  Json tensors = Json::array();
  for (const TensorSpec& spec : flow.tensors()) {
    tensors.push_back(
        {{"name", spec.name}, {"rows", spec.rows}, {"cols", spec.cols}, {"offset", spec.offset}});
  }
  header["tensors"] = tensors;
  header["num_parameters"] = flow.parameters().size();
  header["num_buffers"] = flow.buffers().size();
  header["standardization"] = flow.standardization().active();
  header["value_types"] = {
      {kParameters, "<f4"}, {kBuffers, "<f4"}, {kShift, "<f8"}, {kScale, "<f8"}};
  header["metadata"] = parse_object(metadata_json, "flow metadata");

  // The numbers, one section each.
  ModelFile file;
  file.kind = kFlowKind;
  file.header_json = header.dump();
  file.sections.emplace_back(kParameters, to_bytes(flow.parameters()));
  file.sections.emplace_back(kBuffers, to_bytes(flow.buffers()));
  if (flow.standardization().active()) {
    file.sections.emplace_back(kShift, to_bytes(flow.standardization().shift));
    file.sections.emplace_back(kScale, to_bytes(flow.standardization().scale));
  }
  return file;
}

Maf decode_flow(const ModelFile& file) {
  require_kind(file, kFlowKind);
  Json header;
  try {
    header = Json::parse(file.header_json);
  } catch (const Json::exception& error) {
    throw corrupted(file, std::string("the header is not valid JSON (") + error.what() + ")");
  }
  if (!header.is_object() || !header.contains("config") || !header["config"].is_object()) {
    throw corrupted(file, "the header has no \"config\" object");
  }

  // A fresh flow of the stored configuration is the reference for every check.
  Maf flow(config_from_json(file, header["config"]));
  check_tensors(file, header, flow);
  check_counts_and_types(file, header, flow);
  flow.parameters() = read_values<float>(file, kParameters, flow.parameters().size());
  flow.buffers() = read_values<float>(file, kBuffers, flow.buffers().size());
  check_running_variances(file, flow);
  check_masked_weights(file, flow);
  read_standardization(file, header, &flow);
  return flow;
}

void save_flow(const std::string& path, const Maf& flow, const std::string& metadata_json) {
  write_model_file(path, encode_flow(flow, metadata_json));
}

Maf load_flow(const std::string& path) { return decode_flow(read_model_file(path)); }

}  // namespace nfcal
