#include "stepdown/eval/junit.h"

#include <fmt/format.h>

namespace stepdown::eval {

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "\xEF\xBF\xBD";
        } else {
          out += c;
        }
    }
  }
  return out;
}

namespace {

std::string testcase(const GateRow& row, double confidence) {
  const StratumDelta& d = row.delta;
  const int percent = static_cast<int>(confidence * 100.0 + 0.5);
  const std::string numbers = fmt::format(
      "{} on {}: n={}, baseline {:.4f}, candidate {:.4f}, delta {:+.4f}, {}% CI [{:+.4f}, {:+.4f}], tolerance {:.4f}",
      d.metric, d.stratum, d.n, d.baseline_mean, d.candidate_mean, d.delta.mean, percent, d.delta.lower, d.delta.upper,
      row.max_regression);
  std::string out = fmt::format("    <testcase classname=\"stepdown.gate\" name=\"{}\">\n", xml_escape(d.stratum));
  if (!row.gated) {
    out += fmt::format("      <system-out>{}; not gated</system-out>\n", xml_escape(numbers));
  } else if (row.verdict == Verdict::kFail) {
    // CI systems often show only the message, so it carries the numbers too.
    const std::string message = fmt::format("regression: CI upper bound {:+.4f} is below -{:.4f}; {}", d.delta.upper,
                                            row.max_regression, numbers);
    out += fmt::format("      <failure message=\"{}\" type=\"regression\">{}</failure>\n", xml_escape(message),
                       xml_escape(numbers));
  } else {
    out += fmt::format("      <system-out>{}; {}</system-out>\n", xml_escape(numbers), verdict_name(row.verdict));
  }
  out += "    </testcase>\n";
  return out;
}

}  // namespace

std::string format_gate_junit(const GateReport& report) {
  const size_t tests = report.strata.size() + 1;
  size_t failures = 0;
  for (const GateRow& row : report.strata) failures += row.gated && row.verdict == Verdict::kFail;
  failures += report.overall.gated && report.overall.verdict == Verdict::kFail;

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"stepdown gate\" tests=\"{}\" failures=\"{}\">\n", tests, failures);
  out += fmt::format("  <testsuite name=\"stepdown.gate\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\">\n",
                     tests, failures);
  for (const GateRow& row : report.strata) out += testcase(row, report.confidence);
  out += testcase(report.overall, report.confidence);
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace stepdown::eval
