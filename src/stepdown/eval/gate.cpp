#include "stepdown/eval/gate.h"

#include "stepdown/core/error.h"

namespace stepdown::eval {

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPass:
      return "pass";
    case Verdict::kInconclusive:
      return "inconclusive";
    case Verdict::kFail:
      return "fail";
  }
  return "unknown";
}

Verdict judge(const MeanInterval& delta, double max_regression) {
  if (delta.upper < -max_regression) return Verdict::kFail;
  if (delta.mean < -max_regression) return Verdict::kInconclusive;
  return Verdict::kPass;
}

bool GateReport::passed() const {
  return failed_names().empty();
}

std::vector<std::string> GateReport::failed_names() const {
  std::vector<std::string> names;
  for (const GateRow& row : strata) {
    if (row.gated && row.verdict == Verdict::kFail) names.push_back(row.delta.stratum);
  }
  if (overall.gated && overall.verdict == Verdict::kFail) names.push_back("overall");
  return names;
}

GateReport run_gate(const Results& baseline, const std::string& baseline_source, const Results& candidate,
                    const std::string& candidate_source, const GatePolicy& policy, const std::string& policy_source) {
  for (const auto& [name, unused] : policy.strata) {
    if (!baseline.strata.contains(name)) {
      std::string known;
      for (const auto& [stratum, aggregate] : baseline.strata) known += (known.empty() ? "" : ", ") + stratum;
      raise<FormatError>("{}: key strata.{}: stratum \"{}\" is not in {} (its strata: {})", policy_source, name, name,
                         baseline_source, known);
    }
  }
  const PrimaryMetricFn metric_for = [&](const std::string& stratum) {
    try {
      return policy.metric_for(stratum);
    } catch (const InvalidArgument& e) {
      raise<FormatError>("{}: {}", policy_source, e.what());
    }
  };
  const DeltaReport deltas =
      compute_deltas(baseline, baseline_source, candidate, candidate_source, metric_for, policy.bootstrap);

  GateReport report;
  report.baseline_source = baseline_source;
  report.candidate_source = candidate_source;
  report.baseline_model = baseline.model_id;
  report.candidate_model = candidate.model_id;
  report.confidence = policy.bootstrap.confidence;
  report.bootstrap_samples = policy.bootstrap.samples;
  report.seed = policy.bootstrap.seed;
  for (const StratumDelta& delta : deltas.strata) {
    GateRow row;
    row.delta = delta;
    row.max_regression = policy.max_regression_for(delta.stratum);
    row.verdict = judge(delta.delta, row.max_regression);
    report.strata.push_back(row);
  }
  report.overall.delta = deltas.overall;
  report.overall.gated = policy.overall_max_regression.has_value();
  report.overall.max_regression = policy.overall_max_regression.value_or(0.0);
  report.overall.verdict =
      report.overall.gated ? judge(deltas.overall.delta, report.overall.max_regression) : Verdict::kPass;
  return report;
}

}  // namespace stepdown::eval
