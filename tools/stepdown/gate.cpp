// stepdown gate: compares a candidate's results.json with the baseline's under a gate
// policy. Exit codes: 0 pass, 1 a stratum regressed beyond its tolerance, 2 bad input.
#include <cstdio>
#include <memory>

#include "command.h"
#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/eval/gate.h"
#include "stepdown/eval/gate_policy.h"
#include "stepdown/eval/gate_report.h"
#include "stepdown/eval/junit.h"
#include "stepdown/eval/results.h"

namespace stepdown::cli {
namespace {

constexpr int kExitPass = 0;
constexpr int kExitRegression = 1;
constexpr int kExitBadInput = 2;
// Item count below which the gate warns that a stratum's interval is unreliable.
constexpr int64_t kSmallStratum = 20;

struct GateOptions {
  std::string baseline;
  std::string candidate;
  std::string policy;
  std::string markdown;
  std::string junit;
  bool json = false;
};

int run(const GateOptions& options) {
  const eval::Results baseline = eval::read_results(options.baseline);
  const eval::Results candidate = eval::read_results(options.candidate);
  const eval::GatePolicy policy = eval::read_gate_policy(options.policy);
  if (baseline.suite_sha256 != candidate.suite_sha256) {
    spdlog::warn("{} and {} were evaluated on different suites (sha256 {} and {}); items are paired by id",
                 options.baseline, options.candidate, baseline.suite_sha256, candidate.suite_sha256);
  }

  const eval::GateReport report =
      eval::run_gate(baseline, options.baseline, candidate, options.candidate, policy, options.policy);

  for (const eval::GateRow& row : report.strata) {
    if (row.delta.n < kSmallStratum) {
      spdlog::warn("stratum {} has {} items; below about {} the percentile interval is narrower than its nominal "
                   "level, so its verdict is less certain than the CI suggests",
                   row.delta.stratum, row.delta.n, kSmallStratum);
    }
  }

  const std::string markdown = eval::format_gate_markdown(report);
  if (!options.markdown.empty()) write_file_atomic(options.markdown, markdown);
  if (!options.junit.empty()) write_file_atomic(options.junit, eval::format_gate_junit(report));
  const std::string out = options.json ? eval::format_gate_json(report) : markdown;
  std::fwrite(out.data(), 1, out.size(), stdout);

  if (report.passed()) {
    spdlog::info("gate passed: {} strata within tolerance", report.strata.size());
    return kExitPass;
  }
  std::string names;
  for (const std::string& name : report.failed_names()) names += (names.empty() ? "" : ", ") + name;
  spdlog::error("gate failed: regression beyond tolerance in {}", names);
  return kExitRegression;
}

[[maybe_unused]] const bool registered = register_command("gate", [](CLI::App& app, int& exit_code) {
  auto options = std::make_shared<GateOptions>();
  CLI::App* command = app.add_subcommand(
      "gate", "Compare candidate results with baseline results under a gate policy (exit 0 pass, 1 regression, 2 bad input)");
  command->add_option("--baseline", options->baseline, "Baseline results.json from `stepdown eval`")->required();
  command->add_option("--candidate", options->candidate, "Candidate results.json from `stepdown eval`")->required();
  command->add_option("--policy", options->policy, "Gate policy YAML (see docs/gate.md)")->required();
  command->add_option("--markdown", options->markdown, "Also write the Markdown summary to this file");
  command->add_option("--junit", options->junit, "Also write JUnit XML (one testcase per stratum) to this file");
  command->add_flag("--json", options->json, "Print the report as JSON on stdout instead of Markdown");
  command->callback([options, &exit_code] {
    // Set before reading anything, so an error thrown below exits with the bad-input code.
    exit_code = kExitBadInput;
    try {
      exit_code = run(*options);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      // Any other failure (a parser's own exception) is still bad input, not a regression.
      throw Error(e.what());
    }
  });
});

}  // namespace
}  // namespace stepdown::cli
