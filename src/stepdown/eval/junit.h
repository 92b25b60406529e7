#pragma once
// JUnit XML for CI systems (GitHub Actions, GitLab, Jenkins): one testsuite "stepdown.gate"
// with one testcase per stratum and one for the overall row; a failed stratum carries a
// <failure> whose message states n, both means, the delta, the interval and the
// tolerance.
#include <string>

#include "stepdown/eval/gate.h"

namespace stepdown::eval {

std::string format_gate_junit(const GateReport& report);

// Escapes &, <, >, " and ' for XML text and attributes, and replaces control characters
// that XML 1.0 cannot carry with U+FFFD.
std::string xml_escape(const std::string& text);

}  // namespace stepdown::eval
