// nfcal info: what a model file holds, after the same checks every command that reads it
// makes: the flow's architecture, the classifier, ceiling and log Z of a calibrated model,
// and the training metadata, as text or JSON.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nfcal/calibrated_flow.hpp"
#include "nfcal/model_file.hpp"

#include "cli/commands.hpp"
#include "cli/common.hpp"

namespace nfcal::cli {
namespace {

struct InfoOptions {
  CommonOptions common;
  std::string model;
  std::string json;  // "" none, "-" stdout, else a file
};

// A header without its tensor table: names, shapes and offsets of every weight matrix are
// for the loader, not for a reader.
nlohmann::json without_tensors(const std::string& header_json) {
  nlohmann::json header = nlohmann::json::parse(header_json);
  header.erase("tensors");
  return header;
}

// "key: value" lines of a metadata object, nested objects flattened as "outer.inner".
void append_metadata(const nlohmann::json& object, const std::string& prefix,
                     std::vector<std::string>* lines) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string key = prefix + it.key();
    if (it->is_object()) {
      append_metadata(*it, key + ".", lines);
    } else {
      lines->push_back(key + ": " + (it->is_string() ? it->get<std::string>() : it->dump()));
    }
  }
}

std::string describe_flow(const nlohmann::json& flow) {
  const nlohmann::json& c = flow.value("config", nlohmann::json::object());
  char line[256];
  std::snprintf(line, sizeof(line),
                "flow: %d dimensions, %d MADE layers of %d x %d %s units, order %s, %s, %lld "
                "parameters",
                c.value("dim", 0), c.value("layers", 0), c.value("hidden_layers", 0),
                c.value("hidden", 0), c.value("activation", std::string("?")).c_str(),
                c.value("ordering", std::string("?")).c_str(),
                c.value("batch_norm", false) ? "batch norm between layers" : "no batch norm",
                flow.value("num_parameters", 0LL));
  return line;
}

std::string describe_calibration(const nlohmann::json& header, const CalibratedFlow& model) {
  const nlohmann::json& clf = header.value("classifier", nlohmann::json::object());
  char line[512];
  std::snprintf(line, sizeof(line),
                "classifier: %s, %d trees on %s (%d features), class balance %.4f\n"
                "ceiling %s, log Z %.4f +- %.4f (ESS %.0f of %lld samples), predicted "
                "acceptance %.4f, %s sampling",
                clf.value("type", std::string("?")).c_str(), clf.value("trees", 0),
                clf.value("input", std::string("data")).c_str(), clf.value("num_features", 0),
                clf.value("balance", 0.0), format_number(model.ceiling()).c_str(), model.log_z(),
                model.log_z_se(), header.value("ess", 0.0), header.value("log_z_samples", 0LL),
                model.acceptance_predicted(), model.exact_sampling() ? "exact" : "approximate");
  return line;
}

void run_info(const InfoOptions& options) {
  const Runtime runtime = apply_common_options(options.common);
  check_json_target(options.json);

  // Load the model as every other command does, so a damaged file fails here the same way.
  const AnyModel model = load_model(options.model, runtime.threads);
  const ModelFile file = read_model_file(options.model);
  const nlohmann::json header = without_tensors(file.header_json);
  const nlohmann::json flow_header =
      model.is_calibrated()
          ? without_tensors(
                decode_model_file(file.section("flow"), options.model + ": flow").header_json)
          : header;

  // The JSON: the headers as stored, tensor tables left out, and the sections' sizes.
  nlohmann::json sections = nlohmann::json::array();
  for (const auto& [name, bytes] : file.sections) {
    sections.push_back({{"name", name}, {"bytes", bytes.size()}});
  }
  nlohmann::json info = {
      {"file", options.model}, {"bytes", std::filesystem::file_size(options.model)},
      {"kind", model.kind()},  {"dim", model.dim()},
      {"header", header},      {"sections", sections}};
  if (model.is_calibrated()) {
    info["flow"] = flow_header;
    info["acceptance_predicted"] = model.calibrated()->acceptance_predicted();
  }

  // The text: one line per part, then the metadata the writers stored.
  std::string text = options.model + ": " + model.kind() + " model, nfcal " +
                     header.value("nfcal_version", std::string("?")) + " file of " +
                     std::to_string(info["bytes"].get<std::uintmax_t>()) + " bytes, checked\n";
  text += describe_flow(flow_header) + "\n";
  if (model.is_calibrated()) text += describe_calibration(header, *model.calibrated()) + "\n";
  std::vector<std::string> lines;
  append_metadata(flow_header.value("metadata", nlohmann::json::object()), "", &lines);
  if (!lines.empty()) text += "flow training:\n";
  for (const std::string& l : lines) text += "  " + l + "\n";
  if (model.is_calibrated()) {
    lines.clear();
    append_metadata(header.value("metadata", nlohmann::json::object()), "", &lines);
    if (!lines.empty()) text += "calibration:\n";
    for (const std::string& l : lines) text += "  " + l + "\n";
  }

  std::fputs(text.c_str(), summary_stream(options.json));
  write_json_target(options.json, info.dump(2));
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* command = app.add_subcommand("info", "check a model file and describe what it holds");
  command
      ->add_option("--model", options->model,
                   "a model file written by nfcal fit or nfcal calibrate")
      ->required();
  command->add_option("--json", options->json, "also write the description as JSON (- for stdout)");
  add_common_options(command, &options->common, false);
  command->callback([options] { run_info(*options); });
}

}  // namespace nfcal::cli
