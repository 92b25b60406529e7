#pragma once
// `stepdown decide` without the command line: climb the ladder for a policy and write the
// output folder (decision.json, manifest.json, gate.yaml, baseline-results.json, the
// chosen model.gguf and rungs/<name>/ for every rung built).
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "stepdown/decide/policy.h"

namespace stepdown::decide {

struct DecideOptions {
  DecidePolicy policy;
  std::filesystem::path out_dir = "decide-out";
  std::filesystem::path cache_root;  // empty: default_cache_root()
};

struct DecideOutcome {
  nlohmann::json decision;  // the contents of decision.json
  bool recommended = false;
};

// Climbs, writes the output folder and returns the decision. Bad input (missing files,
// unknown devices, an unreachable endpoint) raises before any long work starts. Failures
// of a rung other than the baseline are recorded as its status "error"; the climb goes on.
DecideOutcome run_decide(const DecideOptions& options);

}  // namespace stepdown::decide
