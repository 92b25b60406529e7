#include "stepdown/eval/gate_policy.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "stepdown/core/error.h"

namespace stepdown::eval {
namespace {

class PolicyReader {
 public:
  explicit PolicyReader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    raise<FormatError>("{}: key {}: {}", source_, key, what);
  }

  void check_keys(const YAML::Node& map, const std::string& path, const std::set<std::string>& allowed) const {
    if (!map.IsMap()) fail(path.empty() ? "(top level)" : path, "expected a mapping");
    for (const auto& entry : map) {
      const std::string key = entry.first.as<std::string>();
      if (!allowed.contains(key)) {
        std::string names;
        for (const std::string& name : allowed) names += (names.empty() ? "" : ", ") + name;
        fail(join(path, key), fmt::format("unknown key; expected one of: {}", names));
      }
    }
  }

  std::string string(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) fail(key, "expected a string");
    const std::string value = node.as<std::string>();
    if (value.empty()) fail(key, "expected a non-empty string");
    return value;
  }

  double tolerance(const YAML::Node& node, const std::string& key) const {
    double value = 0.0;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, value)) {
      fail(key, fmt::format("expected a number, found \"{}\"", node.IsScalar() ? node.Scalar() : "a collection"));
    }
    if (!std::isfinite(value) || value < 0) {
      fail(key, fmt::format("expected a finite number >= 0 in score units, found {}", value));
    }
    return value;
  }

  template <class T>
  T scalar(const YAML::Node& node, const std::string& key, const char* expected) const {
    T value{};
    if (!node.IsScalar() || !YAML::convert<T>::decode(node, value)) {
      fail(key, fmt::format("expected {}, found \"{}\"", expected, node.IsScalar() ? node.Scalar() : "a collection"));
    }
    return value;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  const std::string& source_;
};

GatePolicy parse_policy_node(const YAML::Node& root, const std::string& source);

}  // namespace

std::string GatePolicy::metric_for(const std::string& stratum) const {
  auto it = strata.find(stratum);
  if (it != strata.end() && it->second.primary_metric) return *it->second.primary_metric;
  if (primary_metric.empty()) {
    raise<InvalidArgument>("gate policy names no primary metric for stratum \"{}\"; set primary_metric at the top "
                           "level or under strata.{}",
                           stratum, stratum);
  }
  return primary_metric;
}

double GatePolicy::max_regression_for(const std::string& stratum) const {
  auto it = strata.find(stratum);
  if (it != strata.end() && it->second.max_regression) return *it->second.max_regression;
  return max_regression;
}

GatePolicy parse_gate_policy(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    raise<FormatError>("{}: invalid YAML at line {}, column {}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  try {
    return parse_policy_node(root, source);
  } catch (const YAML::Exception& e) {
    // A key that is itself a list or map, for instance, fails conversion inside yaml-cpp.
    raise<FormatError>("{}: invalid policy at line {}, column {}: {}", source, e.mark.line + 1, e.mark.column + 1,
                       e.msg);
  }
}

namespace {

GatePolicy parse_policy_node(const YAML::Node& root, const std::string& source) {
  const PolicyReader reader(source);
  if (root.IsNull()) reader.fail("(top level)", "the policy is empty; set at least primary_metric");
  reader.check_keys(root, "",
                    {"primary_metric", "max_regression", "bootstrap_samples", "seed", "confidence", "strata", "overall"});

  GatePolicy policy;
  if (root["primary_metric"]) policy.primary_metric = reader.string(root["primary_metric"], "primary_metric");
  if (root["max_regression"]) policy.max_regression = reader.tolerance(root["max_regression"], "max_regression");
  if (root["bootstrap_samples"]) {
    const int64_t samples = reader.scalar<int64_t>(root["bootstrap_samples"], "bootstrap_samples", "an integer");
    if (samples < 1 || samples > 1000000) {
      reader.fail("bootstrap_samples", fmt::format("expected an integer in [1, 1000000], found {}", samples));
    }
    policy.bootstrap.samples = static_cast<int>(samples);
  }
  if (root["seed"]) policy.bootstrap.seed = reader.scalar<uint64_t>(root["seed"], "seed", "a non-negative integer");
  if (root["confidence"]) {
    const double confidence = reader.scalar<double>(root["confidence"], "confidence", "a number");
    if (!(confidence > 0.0 && confidence < 1.0)) {
      reader.fail("confidence", fmt::format("expected a number in (0, 1) such as 0.95, found {}", confidence));
    }
    policy.bootstrap.confidence = confidence;
  }
  if (const YAML::Node overall = root["overall"]) {
    reader.check_keys(overall, "overall", {"max_regression"});
    if (overall["max_regression"]) {
      policy.overall_max_regression = reader.tolerance(overall["max_regression"], "overall.max_regression");
    }
  }
  if (const YAML::Node strata = root["strata"]) {
    if (!strata.IsMap()) reader.fail("strata", "expected a mapping from stratum name to its settings");
    for (const auto& entry : strata) {
      const std::string name = entry.first.as<std::string>();
      const std::string path = "strata." + name;
      StratumPolicy stratum;
      if (!entry.second.IsNull()) {
        reader.check_keys(entry.second, path, {"primary_metric", "max_regression"});
        if (entry.second["primary_metric"]) {
          stratum.primary_metric = reader.string(entry.second["primary_metric"], path + ".primary_metric");
        }
        if (entry.second["max_regression"]) {
          stratum.max_regression = reader.tolerance(entry.second["max_regression"], path + ".max_regression");
        }
      }
      policy.strata[name] = stratum;
    }
  }
  return policy;
}

}  // namespace

GatePolicy read_gate_policy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot open gate policy: {}", path.string(), std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_gate_policy(text.str(), path.string());
}

}  // namespace stepdown::eval
