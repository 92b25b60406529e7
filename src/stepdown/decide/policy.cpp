#include "stepdown/decide/policy.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "stepdown/core/error.h"
#include "stepdown/decide/rungs.h"

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;

// Reads typed values out of YAML nodes. Every error names the file, the key path and the
// 1-based line of the offending node.
class Reader {
 public:
  Reader(std::string source, fs::path base_dir) : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key, const std::string& what) const {
    const YAML::Mark mark = node.Mark();
    if (mark.line >= 0) raise<FormatError>("{}:{}: key '{}': {}", source_, mark.line + 1, key, what);
    raise<FormatError>("{}: key '{}': {}", source_, key, what);
  }

  static std::string found(const YAML::Node& node) {
    if (node.IsScalar()) return fmt::format("\"{}\"", node.Scalar());
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a mapping";
    return "nothing";
  }

  void check_keys(const YAML::Node& map, const std::string& path, const std::set<std::string>& allowed) const {
    if (!map.IsMap()) fail(map, path.empty() ? "(top level)" : path, "expected a mapping, found " + found(map));
    for (const auto& entry : map) {
      const std::string key = entry.first.as<std::string>();
      if (allowed.contains(key)) continue;
      std::string names;
      for (const std::string& name : allowed) names += (names.empty() ? "" : ", ") + name;
      fail(entry.first, join(path, key), "unknown key; expected one of: " + names);
    }
  }

  std::string string(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar() || node.Scalar().empty()) fail(node, key, "expected a non-empty string, found " + found(node));
    return node.Scalar();
  }

  fs::path path(const YAML::Node& node, const std::string& key) const {
    const fs::path value = string(node, key);
    return value.is_absolute() ? value : base_dir_ / value;
  }

  double positive(const YAML::Node& node, const std::string& key, const char* unit) const {
    const double value = number(node, key, unit);
    if (!(value > 0)) fail(node, key, fmt::format("expected a number > 0 ({}), found {}", unit, value));
    return value;
  }

  double non_negative(const YAML::Node& node, const std::string& key, const char* unit) const {
    const double value = number(node, key, unit);
    if (value < 0) fail(node, key, fmt::format("expected a number >= 0 ({}), found {}", unit, value));
    return value;
  }

  int64_t integer(const YAML::Node& node, const std::string& key, int64_t min) const {
    int64_t value = 0;
    if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, value)) {
      fail(node, key, fmt::format("expected an integer >= {}, found {}", min, found(node)));
    }
    if (value < min) fail(node, key, fmt::format("expected an integer >= {}, found {}", min, value));
    return value;
  }

  bool boolean(const YAML::Node& node, const std::string& key) const {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      fail(node, key, "expected true or false, found " + found(node));
    }
    return value;
  }

  // A string or a list of strings.
  std::vector<std::string> names(const YAML::Node& node, const std::string& key) const {
    if (node.IsScalar()) return {string(node, key)};
    if (!node.IsSequence() || node.size() == 0) fail(node, key, "expected a name or a non-empty list, found " + found(node));
    std::vector<std::string> values;
    for (size_t i = 0; i < node.size(); ++i) values.push_back(string(node[i], fmt::format("{}[{}]", key, i)));
    return values;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  double number(const YAML::Node& node, const std::string& key, const char* unit) const {
    double value = 0.0;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, value) || !std::isfinite(value)) {
      fail(node, key, fmt::format("expected a number ({}), found {}", unit, found(node)));
    }
    return value;
  }

  std::string source_;
  fs::path base_dir_;
};

void read_budget(const Reader& reader, const YAML::Node& node, Budget& budget) {
  reader.check_keys(node, "budget", {"ttft_p95_ms", "tpot_p95_ms", "e2e_p95_ms", "output_tokens", "prompt_tokens"});
  if (node["ttft_p95_ms"]) budget.ttft_p95_ms = reader.positive(node["ttft_p95_ms"], "budget.ttft_p95_ms", "ms");
  if (node["tpot_p95_ms"]) budget.tpot_p95_ms = reader.positive(node["tpot_p95_ms"], "budget.tpot_p95_ms", "ms");
  if (node["e2e_p95_ms"]) budget.e2e_p95_ms = reader.positive(node["e2e_p95_ms"], "budget.e2e_p95_ms", "ms");
  if (node["output_tokens"]) budget.output_tokens = reader.integer(node["output_tokens"], "budget.output_tokens", 1);
  if (node["prompt_tokens"]) budget.prompt_tokens = reader.integer(node["prompt_tokens"], "budget.prompt_tokens", 1);
}

void read_tolerance(const Reader& reader, const YAML::Node& node, Tolerance& tolerance) {
  if (!node.IsMap()) reader.fail(node, "tolerance", "expected a mapping, found " + Reader::found(node));
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    const std::string path = "tolerance." + key;
    if (key == "default") {
      tolerance.default_max_regression = reader.non_negative(entry.second, path, "metric units");
    } else if (key == "metric") {
      tolerance.metric = reader.string(entry.second, path);
    } else if (key == "overall") {
      tolerance.overall = reader.non_negative(entry.second, path, "metric units");
    } else if (entry.second.IsScalar()) {
      // Any other key is a stratum: a number is its tolerance.
      tolerance.strata[key].max_regression = reader.non_negative(entry.second, path, "metric units");
    } else {
      reader.check_keys(entry.second, path, {"max_regression", "metric"});
      StratumTolerance& stratum = tolerance.strata[key];
      if (entry.second["max_regression"]) {
        stratum.max_regression =
            reader.non_negative(entry.second["max_regression"], path + ".max_regression", "metric units");
      }
      if (entry.second["metric"]) stratum.metric = reader.string(entry.second["metric"], path + ".metric");
    }
  }
}

void read_gate(const Reader& reader, const YAML::Node& node, eval::BootstrapOptions& gate) {
  reader.check_keys(node, "gate", {"confidence", "bootstrap_samples", "seed"});
  if (node["confidence"]) {
    gate.confidence = reader.positive(node["confidence"], "gate.confidence", "a level in (0, 1)");
    if (gate.confidence >= 1) reader.fail(node["confidence"], "gate.confidence", "expected a level in (0, 1)");
  }
  if (node["bootstrap_samples"]) {
    gate.samples = static_cast<int>(reader.integer(node["bootstrap_samples"], "gate.bootstrap_samples", 100));
  }
  if (node["seed"]) gate.seed = static_cast<uint64_t>(reader.integer(node["seed"], "gate.seed", 0));
}

void read_rung_params(const Reader& reader, const YAML::Node& node, DecidePolicy& policy) {
  if (!node.IsMap()) reader.fail(node, "rung_params", "expected a mapping of rung names, found " + Reader::found(node));
  for (const auto& rung : node) {
    const std::string name = rung.first.as<std::string>();
    if (find_rung(name) == nullptr) {
      reader.fail(rung.first, "rung_params." + name, "unknown rung; expected one of: " + ladder_names());
    }
    if (!rung.second.IsMap()) reader.fail(rung.second, "rung_params." + name, "expected a mapping of KEY: VALUE");
    for (const auto& param : rung.second) {
      const std::string key = param.first.as<std::string>();
      policy.rung_params[name][key] = reader.string(param.second, "rung_params." + name + "." + key);
    }
  }
}

DecidePolicy parse_root(const YAML::Node& root, const Reader& reader, const std::string& source) {
  DecidePolicy policy;
  policy.source = source;
  reader.check_keys(root, "",
                    {"model", "tokenizer", "baseline_scheme", "endpoint", "suite", "traffic", "per_stratum", "seed",
                     "max_tokens", "calibration", "calib_samples", "calib_seq_len", "device", "budget", "memory_mb",
                     "tolerance", "rungs", "rung_params", "stop_at_first", "threads", "bench", "gate"});

  if (root["model"]) policy.model = reader.path(root["model"], "model");
  if (root["tokenizer"]) policy.tokenizer = reader.path(root["tokenizer"], "tokenizer");
  if (root["baseline_scheme"]) policy.baseline_scheme = reader.string(root["baseline_scheme"], "baseline_scheme");
  if (const YAML::Node node = root["endpoint"]) {
    reader.check_keys(node, "endpoint", {"url", "api_model", "api_key_env"});
    Endpoint endpoint;
    if (!node["url"]) reader.fail(node, "endpoint.url", "missing required key");
    if (!node["api_model"]) reader.fail(node, "endpoint.api_model", "missing required key");
    endpoint.url = reader.string(node["url"], "endpoint.url");
    endpoint.api_model = reader.string(node["api_model"], "endpoint.api_model");
    if (node["api_key_env"]) endpoint.api_key_env = reader.string(node["api_key_env"], "endpoint.api_key_env");
    policy.endpoint = endpoint;
  }

  if (root["suite"] && root["traffic"]) reader.fail(root["traffic"], "traffic", "give either suite or traffic, not both");
  if (root["suite"]) policy.suite = reader.path(root["suite"], "suite");
  if (root["traffic"]) policy.traffic = reader.path(root["traffic"], "traffic");
  if (root["per_stratum"]) policy.per_stratum = reader.integer(root["per_stratum"], "per_stratum", 1);
  if (root["seed"]) policy.seed = static_cast<uint64_t>(reader.integer(root["seed"], "seed", 0));
  if (root["max_tokens"]) policy.max_tokens = static_cast<int>(reader.integer(root["max_tokens"], "max_tokens", 1));
  if (root["calibration"]) policy.calibration = reader.path(root["calibration"], "calibration");
  if (root["calib_samples"]) policy.calib_samples = reader.integer(root["calib_samples"], "calib_samples", 1);
  if (root["calib_seq_len"]) policy.calib_seq_len = reader.integer(root["calib_seq_len"], "calib_seq_len", 8);

  if (root["device"]) policy.devices = reader.names(root["device"], "device");
  if (root["budget"]) read_budget(reader, root["budget"], policy.budget);
  if (root["memory_mb"]) policy.memory_mb = reader.positive(root["memory_mb"], "memory_mb", "MB");
  if (root["tolerance"]) read_tolerance(reader, root["tolerance"], policy.tolerance);
  if (const YAML::Node node = root["rungs"]) {
    policy.rungs = reader.names(node, "rungs");
    for (size_t i = 0; i < policy.rungs.size(); ++i) {
      if (find_rung(policy.rungs[i]) == nullptr) {
        reader.fail(node.IsSequence() ? node[i] : node, fmt::format("rungs[{}]", i),
                    fmt::format("unknown rung \"{}\"; expected one of: {}", policy.rungs[i], ladder_names()));
      }
    }
  }
  if (root["rung_params"]) read_rung_params(reader, root["rung_params"], policy);
  if (root["stop_at_first"]) policy.stop_at_first = reader.boolean(root["stop_at_first"], "stop_at_first");
  if (root["threads"]) policy.threads = static_cast<int>(reader.integer(root["threads"], "threads", 0));
  if (const YAML::Node node = root["bench"]) {
    reader.check_keys(node, "bench", {"repetitions", "warmup"});
    if (node["repetitions"]) {
      policy.bench_repetitions = static_cast<int>(reader.integer(node["repetitions"], "bench.repetitions", 1));
    }
    if (node["warmup"]) policy.bench_warmup = static_cast<int>(reader.integer(node["warmup"], "bench.warmup", 0));
  }
  if (root["gate"]) read_gate(reader, root["gate"], policy.gate);
  return policy;
}

nlohmann::json optional_json(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

DecidePolicy parse_decide_policy(const std::string& text, const std::string& source, const fs::path& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    raise<FormatError>("{}:{}: invalid YAML: {}", source, e.mark.line + 1, e.msg);
  }
  const Reader reader(source, base_dir);
  if (!root.IsDefined() || root.IsNull()) raise<FormatError>("{}: the policy is empty; expected a mapping", source);
  return parse_root(root, reader, source);
}

DecidePolicy read_decide_policy(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot read the decision policy", path.string());
  std::stringstream text;
  text << in.rdbuf();
  return parse_decide_policy(text.str(), path.string(), path.parent_path());
}

void validate_policy(const DecidePolicy& policy) {
  if (policy.model.empty()) {
    raise<InvalidArgument>("{}: missing required key 'model'; set it in the policy or give --model", policy.source);
  }
  if (policy.suite.has_value() == policy.traffic.has_value()) {
    raise<InvalidArgument>("{}: give exactly one of 'suite' and 'traffic' (or --suite, --traffic)", policy.source);
  }
  const Budget& budget = policy.budget;
  if (!budget.ttft_p95_ms && !budget.tpot_p95_ms && !budget.e2e_p95_ms && !policy.memory_mb) {
    raise<InvalidArgument>("{}: the budget sets no limit; set budget.tpot_p95_ms, budget.ttft_p95_ms, "
                           "budget.e2e_p95_ms or memory_mb",
                           policy.source);
  }
  if (policy.devices.empty()) raise<InvalidArgument>("{}: 'device' lists no device", policy.source);

  // Rungs must follow the ladder's order, because the climb stops at the first that passes.
  int previous = -1;
  for (const std::string& name : policy.rungs) {
    const RungDefinition* rung = find_rung(name);
    if (rung == nullptr) {
      raise<InvalidArgument>("{}: unknown rung \"{}\"; expected one of: {}", policy.source, name, ladder_names());
    }
    const int position = static_cast<int>(rung - ladder().data());
    if (position <= previous) {
      raise<InvalidArgument>("{}: rung \"{}\" is out of ladder order or repeated; list rungs in this order: {}",
                             policy.source, name, ladder_names());
    }
    previous = position;
  }
}

eval::GatePolicy make_gate_policy(const DecidePolicy& policy) {
  eval::GatePolicy gate;
  gate.primary_metric = policy.tolerance.metric;
  gate.max_regression = policy.tolerance.default_max_regression;
  gate.overall_max_regression = policy.tolerance.overall;
  gate.bootstrap = policy.gate;
  for (const auto& [name, stratum] : policy.tolerance.strata) {
    gate.strata[name].primary_metric = stratum.metric;
    gate.strata[name].max_regression = stratum.max_regression;
  }
  return gate;
}

std::string format_gate_policy_yaml(const DecidePolicy& policy) {
  const eval::GatePolicy gate = make_gate_policy(policy);
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "primary_metric" << YAML::Value << gate.primary_metric;
  out << YAML::Key << "max_regression" << YAML::Value << gate.max_regression;
  out << YAML::Key << "bootstrap_samples" << YAML::Value << gate.bootstrap.samples;
  out << YAML::Key << "seed" << YAML::Value << gate.bootstrap.seed;
  out << YAML::Key << "confidence" << YAML::Value << gate.bootstrap.confidence;
  if (!gate.strata.empty()) {
    out << YAML::Key << "strata" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, stratum] : gate.strata) {
      out << YAML::Key << name << YAML::Value << YAML::BeginMap;
      if (stratum.primary_metric) out << YAML::Key << "primary_metric" << YAML::Value << *stratum.primary_metric;
      if (stratum.max_regression) out << YAML::Key << "max_regression" << YAML::Value << *stratum.max_regression;
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  if (gate.overall_max_regression) {
    out << YAML::Key << "overall" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "max_regression" << YAML::Value << *gate.overall_max_regression << YAML::EndMap;
  }
  out << YAML::EndMap;
  return "# Gate policy written by `stepdown decide` from the decision policy's tolerances.\n" +
         std::string(out.c_str()) + "\n";
}

nlohmann::json policy_to_json(const DecidePolicy& policy) {
  nlohmann::json json;
  json["model"] = policy.model.string();
  json["tokenizer"] = policy.tokenizer ? nlohmann::json(policy.tokenizer->string()) : nlohmann::json(nullptr);
  json["baseline_scheme"] = policy.baseline_scheme;
  if (policy.endpoint) {
    json["endpoint"] = {{"url", policy.endpoint->url}, {"api_model", policy.endpoint->api_model}};
  }

  json["suite"] = policy.suite ? nlohmann::json(policy.suite->string()) : nlohmann::json(nullptr);
  json["traffic"] = policy.traffic ? nlohmann::json(policy.traffic->string()) : nlohmann::json(nullptr);
  json["per_stratum"] = policy.per_stratum;
  json["seed"] = policy.seed;
  json["max_tokens"] = policy.max_tokens ? nlohmann::json(*policy.max_tokens) : nlohmann::json(nullptr);
  json["calibration"] = policy.calibration ? nlohmann::json(policy.calibration->string()) : nlohmann::json(nullptr);
  json["calib_samples"] = policy.calib_samples;
  json["calib_seq_len"] = policy.calib_seq_len;
  json["device"] = policy.devices;
  json["budget"] = {{"ttft_p95_ms", optional_json(policy.budget.ttft_p95_ms)},
                    {"tpot_p95_ms", optional_json(policy.budget.tpot_p95_ms)},
                    {"e2e_p95_ms", optional_json(policy.budget.e2e_p95_ms)},
                    {"output_tokens", policy.budget.output_tokens},
                    {"prompt_tokens", policy.budget.prompt_tokens}};
  json["memory_mb"] = optional_json(policy.memory_mb);

  nlohmann::json strata = nlohmann::json::object();
  for (const auto& [name, stratum] : policy.tolerance.strata) {
    strata[name] = {{"max_regression", optional_json(stratum.max_regression)},
                    {"metric", stratum.metric ? nlohmann::json(*stratum.metric) : nlohmann::json(nullptr)}};
  }
  json["tolerance"] = {{"default", policy.tolerance.default_max_regression},
                       {"metric", policy.tolerance.metric},
                       {"overall", optional_json(policy.tolerance.overall)},
                       {"strata", strata}};

  json["rungs"] = policy.rungs;
  json["rung_params"] = policy.rung_params;
  json["stop_at_first"] = policy.stop_at_first;
  json["threads"] = policy.threads;
  json["bench"] = {{"repetitions", policy.bench_repetitions}, {"warmup", policy.bench_warmup}};
  json["gate"] = {{"confidence", policy.gate.confidence},
                  {"bootstrap_samples", policy.gate.samples},
                  {"seed", policy.gate.seed}};
  return json;
}

}  // namespace stepdown::decide
