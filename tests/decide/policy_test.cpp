// Decision policy parsing: the worked example, flags' effect through validate_policy, and
// errors that name the file, the key path, the line, and expected vs found.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/decide/policy.h"
#include "stepdown/eval/gate_policy.h"
#include "test_paths.h"

namespace stepdown::decide {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::string& yaml) {
  try {
    parse_decide_policy(yaml, "p.yaml", "/base");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

std::string validation_error_of(const DecidePolicy& policy) {
  try {
    validate_policy(policy);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "no error";
}

TEST(DecidePolicy, ParsesEveryKey) {
  const DecidePolicy policy = parse_decide_policy(R"(
model: models/m.gguf
tokenizer: /abs/tok.bin
baseline_scheme: f32
traffic: traffic.jsonl
per_stratum: 4
seed: 9
max_tokens: 16
calibration: calib.txt
device: [host, raspberry-pi-5]
budget: {tpot_p95_ms: 48, ttft_p95_ms: 300, e2e_p95_ms: 2000, output_tokens: 40, prompt_tokens: 100}
memory_mb: 512
tolerance:
  default: 0.03
  metric: rougeL
  overall: 0.01
  code: {metric: pass_at_k, max_regression: 0}
  summarization: 0.05
rungs: [baseline, int8, int4]
rung_params: {mixed: {target_bpw: "5.0"}}
stop_at_first: false
threads: 2
bench: {repetitions: 4, warmup: 2}
gate: {confidence: 0.9, bootstrap_samples: 500, seed: 3}
)",
                                                  "p.yaml", "/base");
  EXPECT_EQ(policy.model, "/base/models/m.gguf");
  EXPECT_EQ(*policy.tokenizer, "/abs/tok.bin");
  EXPECT_EQ(policy.baseline_scheme, "f32");
  EXPECT_EQ(*policy.traffic, "/base/traffic.jsonl");
  EXPECT_FALSE(policy.suite.has_value());
  EXPECT_EQ(policy.per_stratum, 4);
  EXPECT_EQ(policy.seed, 9u);
  EXPECT_EQ(*policy.max_tokens, 16);
  EXPECT_EQ(*policy.calibration, "/base/calib.txt");
  EXPECT_EQ(policy.devices, (std::vector<std::string>{"host", "raspberry-pi-5"}));
  EXPECT_DOUBLE_EQ(*policy.budget.tpot_p95_ms, 48);
  EXPECT_DOUBLE_EQ(*policy.budget.ttft_p95_ms, 300);
  EXPECT_DOUBLE_EQ(*policy.budget.e2e_p95_ms, 2000);
  EXPECT_EQ(policy.budget.output_tokens, 40);
  EXPECT_EQ(policy.budget.prompt_tokens, 100);
  EXPECT_DOUBLE_EQ(*policy.memory_mb, 512);
  EXPECT_DOUBLE_EQ(policy.tolerance.default_max_regression, 0.03);
  EXPECT_DOUBLE_EQ(*policy.tolerance.overall, 0.01);
  EXPECT_EQ(*policy.tolerance.strata.at("code").metric, "pass_at_k");
  EXPECT_DOUBLE_EQ(*policy.tolerance.strata.at("code").max_regression, 0.0);
  EXPECT_DOUBLE_EQ(*policy.tolerance.strata.at("summarization").max_regression, 0.05);
  EXPECT_FALSE(policy.tolerance.strata.at("summarization").metric.has_value());
  EXPECT_EQ(policy.rungs, (std::vector<std::string>{"baseline", "int8", "int4"}));
  EXPECT_EQ(policy.rung_params.at("mixed").at("target_bpw"), "5.0");
  EXPECT_FALSE(policy.stop_at_first);
  EXPECT_EQ(policy.threads, 2);
  EXPECT_EQ(policy.bench_repetitions, 4);
  EXPECT_EQ(policy.bench_warmup, 2);
  EXPECT_DOUBLE_EQ(policy.gate.confidence, 0.9);
  EXPECT_EQ(policy.gate.samples, 500);
  EXPECT_EQ(policy.gate.seed, 3u);
  EXPECT_EQ(validation_error_of(policy), "no error");
}

TEST(DecidePolicy, ExampleFilesParse) {
  for (const char* name : {"decide-policy.yaml", "decide-default-policy.yaml"}) {
    const DecidePolicy policy = read_decide_policy(test::source_dir() / "examples" / name);
    EXPECT_TRUE(policy.budget.tpot_p95_ms.has_value()) << name;
    EXPECT_FALSE(policy.tolerance.strata.empty()) << name;
  }
}

TEST(DecidePolicy, MalformedYamlNamesFileAndLine) {
  const std::string message = error_of("model: m.gguf\nbudget: {tpot_p95_ms: 3\n");
  EXPECT_THAT(message, HasSubstr("p.yaml:"));
  EXPECT_THAT(message, HasSubstr("invalid YAML"));
}

TEST(DecidePolicy, UnknownKeyNamesKeyLineAndChoices) {
  const std::string message = error_of("model: m.gguf\nbudget:\n  tpot_p59_ms: 30\n");
  EXPECT_THAT(message, HasSubstr("p.yaml:3"));
  EXPECT_THAT(message, HasSubstr("budget.tpot_p59_ms"));
  EXPECT_THAT(message, HasSubstr("unknown key"));
  EXPECT_THAT(message, HasSubstr("tpot_p95_ms"));
}

TEST(DecidePolicy, UnknownTopLevelKey) {
  const std::string message = error_of("model: m.gguf\nmodle: x\n");
  EXPECT_THAT(message, HasSubstr("p.yaml:2"));
  EXPECT_THAT(message, HasSubstr("'modle'"));
}

TEST(DecidePolicy, WrongTypeSaysExpectedAndFound) {
  const std::string message = error_of("model: m.gguf\nbudget:\n  tpot_p95_ms: fast\n");
  EXPECT_THAT(message, HasSubstr("p.yaml:3"));
  EXPECT_THAT(message, HasSubstr("budget.tpot_p95_ms"));
  EXPECT_THAT(message, HasSubstr("expected a number"));
  EXPECT_THAT(message, HasSubstr("\"fast\""));
}

TEST(DecidePolicy, NegativeToleranceRejected) {
  const std::string message = error_of("tolerance:\n  code: -0.1\n");
  EXPECT_THAT(message, HasSubstr("tolerance.code"));
  EXPECT_THAT(message, HasSubstr("expected a number >= 0"));
}

TEST(DecidePolicy, UnknownRungListsLadder) {
  const std::string message = error_of("rungs: [baseline, int3]\n");
  EXPECT_THAT(message, HasSubstr("rungs[1]"));
  EXPECT_THAT(message, HasSubstr("\"int3\""));
  EXPECT_THAT(message, HasSubstr("int4-gptq"));
}

TEST(DecidePolicy, SuiteAndTrafficTogetherRejected) {
  EXPECT_THAT(error_of("suite: a.jsonl\ntraffic: b.jsonl\n"), HasSubstr("either suite or traffic"));
}

TEST(DecidePolicy, EmptyPolicyRejected) { EXPECT_THAT(error_of(""), HasSubstr("empty")); }

TEST(DecidePolicy, MissingModelNamesKeyAndFlag) {
  DecidePolicy policy = parse_decide_policy("traffic: t.jsonl\nbudget: {tpot_p95_ms: 10}\n", "p.yaml", "/b");
  const std::string message = validation_error_of(policy);
  EXPECT_THAT(message, HasSubstr("p.yaml"));
  EXPECT_THAT(message, HasSubstr("missing required key 'model'"));
  EXPECT_THAT(message, HasSubstr("--model"));
}

TEST(DecidePolicy, MissingBudgetRejected) {
  DecidePolicy policy = parse_decide_policy("model: m\ntraffic: t.jsonl\n", "p.yaml", "/b");
  EXPECT_THAT(validation_error_of(policy), HasSubstr("sets no limit"));
}

TEST(DecidePolicy, MissingSuiteAndTrafficRejected) {
  DecidePolicy policy = parse_decide_policy("model: m\nbudget: {tpot_p95_ms: 10}\n", "p.yaml", "/b");
  EXPECT_THAT(validation_error_of(policy), HasSubstr("exactly one of 'suite' and 'traffic'"));
}

TEST(DecidePolicy, RungsOutOfOrderRejected) {
  DecidePolicy policy =
      parse_decide_policy("model: m\ntraffic: t\nbudget: {tpot_p95_ms: 10}\nrungs: [int4, int8]\n", "p.yaml", "/b");
  EXPECT_THAT(validation_error_of(policy), HasSubstr("out of ladder order"));
}

TEST(DecidePolicy, ToleranceBecomesGatePolicy) {
  const DecidePolicy policy = parse_decide_policy(
      "tolerance:\n  default: 0.04\n  metric: f1\n  overall: 0.01\n  code: {metric: pass_at_k, max_regression: 0}\n",
      "p.yaml", "/b");
  const eval::GatePolicy gate = make_gate_policy(policy);
  EXPECT_EQ(gate.primary_metric, "f1");
  EXPECT_DOUBLE_EQ(gate.max_regression, 0.04);
  EXPECT_EQ(gate.metric_for("code"), "pass_at_k");
  EXPECT_DOUBLE_EQ(gate.max_regression_for("code"), 0.0);
  EXPECT_EQ(gate.metric_for("other"), "f1");

  // gate.yaml must read back as the same policy in `stepdown gate`.
  const eval::GatePolicy reread = eval::parse_gate_policy(format_gate_policy_yaml(policy), "gate.yaml");
  EXPECT_EQ(reread.primary_metric, "f1");
  EXPECT_DOUBLE_EQ(reread.max_regression, 0.04);
  EXPECT_DOUBLE_EQ(*reread.overall_max_regression, 0.01);
  EXPECT_EQ(reread.metric_for("code"), "pass_at_k");
  EXPECT_DOUBLE_EQ(reread.max_regression_for("code"), 0.0);
  EXPECT_EQ(reread.bootstrap.samples, policy.gate.samples);
}

TEST(DecidePolicy, JsonHasBudgetAndRungs) {
  const DecidePolicy policy =
      parse_decide_policy("model: m\ntraffic: t\nbudget: {tpot_p95_ms: 10}\nrungs: [int8]\n", "p.yaml", "/b");
  const nlohmann::json json = policy_to_json(policy);
  EXPECT_DOUBLE_EQ(json["budget"]["tpot_p95_ms"].get<double>(), 10);
  EXPECT_TRUE(json["budget"]["ttft_p95_ms"].is_null());
  EXPECT_EQ(json["rungs"], nlohmann::json({"int8"}));
  EXPECT_EQ(json["model"], "/b/m");
}

}  // namespace
}  // namespace stepdown::decide
