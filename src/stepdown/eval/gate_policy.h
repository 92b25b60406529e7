#pragma once
// The gate policy: which metric each stratum is judged on, how much regression it
// tolerates, and how the bootstrap interval is drawn. Read from YAML; docs/gate.md has
// the schema and examples/gate.yaml an example.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "stepdown/eval/bootstrap.h"

namespace stepdown::eval {

struct StratumPolicy {
  std::optional<std::string> primary_metric;  // falls back to GatePolicy::primary_metric
  std::optional<double> max_regression;       // falls back to GatePolicy::max_regression
};

struct GatePolicy {
  std::string primary_metric;   // default metric; empty means every stratum must name one
  double max_regression = 0.0;  // default tolerance, absolute, in score units, >= 0
  std::optional<double> overall_max_regression;  // gates all items together when set
  std::map<std::string, StratumPolicy> strata;
  BootstrapOptions bootstrap;  // samples (default 2000), seed (default 0), confidence (0.95)

  // Returns the primary metric of `stratum`; InvalidArgument when neither the stratum nor
  // the policy names one.
  std::string metric_for(const std::string& stratum) const;
  double max_regression_for(const std::string& stratum) const;
};

// Parses a policy from YAML text. Unknown keys are errors (a misspelt key would otherwise
// silently fall back to a default). Errors are FormatError naming `source` and the key.
GatePolicy parse_gate_policy(const std::string& text, const std::string& source);

GatePolicy read_gate_policy(const std::filesystem::path& path);

}  // namespace stepdown::eval
