#include "stepdown/eval/gate_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace stepdown::eval {
namespace {

// Escapes characters that would break a Markdown table cell.
std::string cell(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '|' || c == '\\' || c == '`') out += '\\';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out;
}

std::string markdown_row(const GateRow& row) {
  const StratumDelta& d = row.delta;
  const std::string tolerance = row.gated ? fmt::format("{:.4f}", row.max_regression) : "not gated";
  const std::string verdict = row.gated ? verdict_name(row.verdict) : "-";
  return fmt::format("| {} | {} | {} | {:.4f} | {:.4f} | {:+.4f} | [{:+.4f}, {:+.4f}] | {} | {} |\n", cell(d.stratum),
                     cell(d.metric), d.n, d.baseline_mean, d.candidate_mean, d.delta.mean, d.delta.lower, d.delta.upper,
                     tolerance, verdict);
}

nlohmann::json row_json(const GateRow& row) {
  const StratumDelta& d = row.delta;
  return {{"stratum", d.stratum},
          {"metric", d.metric},
          {"n", d.n},
          {"baseline_mean", d.baseline_mean},
          {"candidate_mean", d.candidate_mean},
          {"delta", d.delta.mean},
          {"ci_lower", d.delta.lower},
          {"ci_upper", d.delta.upper},
          {"gated", row.gated},
          {"max_regression", row.max_regression},
          {"verdict", row.gated ? verdict_name(row.verdict) : "not gated"}};
}

}  // namespace

std::string format_gate_markdown(const GateReport& report) {
  const std::vector<std::string> failed = report.failed_names();
  std::string out;
  if (failed.empty()) {
    out += "## stepdown gate: pass\n\n";
  } else {
    std::string names;
    for (const std::string& name : failed) names += (names.empty() ? "" : ", ") + name;
    out += fmt::format("## stepdown gate: fail ({})\n\n", cell(names));
  }
  out += fmt::format("Baseline `{}` ({}), candidate `{}` ({}).\n\n", cell(report.baseline_source),
                     cell(report.baseline_model), cell(report.candidate_source), cell(report.candidate_model));
  const int percent = static_cast<int>(report.confidence * 100.0 + 0.5);
  out += fmt::format("| stratum | metric | n | baseline | candidate | delta | {}% CI | tolerance | verdict |\n", percent);
  out += "|---|---|---:|---:|---:|---:|---|---:|---|\n";
  for (const GateRow& row : report.strata) out += markdown_row(row);
  out += markdown_row(report.overall);
  out += fmt::format(
      "\nA stratum fails when the upper bound of its {}% paired-bootstrap interval of candidate minus baseline "
      "({} resamples, seed {}) is below minus its tolerance. \"inconclusive\" means the mean delta is below minus "
      "the tolerance but the interval does not exclude an acceptable regression.\n",
      percent, report.bootstrap_samples, report.seed);
  return out;
}

std::string format_gate_json(const GateReport& report) {
  nlohmann::json strata = nlohmann::json::array();
  for (const GateRow& row : report.strata) strata.push_back(row_json(row));
  const nlohmann::json root = {{"passed", report.passed()},
                               {"failed", report.failed_names()},
                               {"baseline", {{"file", report.baseline_source}, {"model", report.baseline_model}}},
                               {"candidate", {{"file", report.candidate_source}, {"model", report.candidate_model}}},
                               {"confidence", report.confidence},
                               {"bootstrap_samples", report.bootstrap_samples},
                               {"seed", report.seed},
                               {"strata", strata},
                               {"overall", row_json(report.overall)}};
  return root.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace stepdown::eval
