#pragma once
// The statistical gate: a stratum fails only when its bootstrap interval shows the
// regression is real, i.e. when the upper bound of the interval of (candidate - baseline)
// is below -max_regression. A point estimate below -max_regression whose interval still
// reaches -max_regression is "inconclusive": reported, but it does not fail the gate.
#include <string>
#include <vector>

#include "stepdown/eval/gate_policy.h"
#include "stepdown/eval/results.h"
#include "stepdown/eval/stats.h"

namespace stepdown::eval {

enum class Verdict { kPass, kInconclusive, kFail };

const char* verdict_name(Verdict verdict);

struct GateRow {
  StratumDelta delta;
  double max_regression = 0.0;  // tolerance, in score units
  bool gated = true;            // false for the overall row when the policy sets no overall tolerance
  Verdict verdict = Verdict::kPass;
};

struct GateReport {
  std::string baseline_source;
  std::string candidate_source;
  std::string baseline_model;
  std::string candidate_model;
  double confidence = 0.95;
  int bootstrap_samples = 0;
  uint64_t seed = 0;
  std::vector<GateRow> strata;  // sorted by stratum name
  GateRow overall;

  bool passed() const;
  // Names of the strata (and "overall") that failed, in report order.
  std::vector<std::string> failed_names() const;
};

// Applies the gate rule to one delta.
Verdict judge(const MeanInterval& delta, double max_regression);

// Compares candidate against baseline under `policy`. Raises FormatError (bad input) when
// the items do not pair up, a primary metric is missing, or the policy names a stratum
// that the results do not contain.
GateReport run_gate(const Results& baseline, const std::string& baseline_source, const Results& candidate,
                    const std::string& candidate_source, const GatePolicy& policy, const std::string& policy_source);

}  // namespace stepdown::eval
