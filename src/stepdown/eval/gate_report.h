#pragma once
// Renderings of a gate report: Markdown for people (a pull-request comment, a CI
// summary) and JSON for machines (`stepdown gate --json`).
#include <string>

#include "stepdown/eval/gate.h"

namespace stepdown::eval {

// A heading with the overall verdict, one table row per stratum plus the overall row
// (n, baseline, candidate, delta, interval, tolerance, verdict), and the rule applied.
std::string format_gate_markdown(const GateReport& report);

// The same numbers as one JSON object.
std::string format_gate_json(const GateReport& report);

}  // namespace stepdown::eval
