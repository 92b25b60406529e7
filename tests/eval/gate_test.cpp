// Tests of the gate policy, the gate rule, its reports and `stepdown gate` exit codes.
#include "stepdown/eval/gate.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/eval/gate_policy.h"
#include "stepdown/eval/gate_report.h"
#include "stepdown/eval/junit.h"
#include "stepdown/eval/results.h"
#include "test_paths.h"

namespace stepdown::eval {
namespace {

const char* kPolicy = R"(
primary_metric: rougeL
max_regression: 0.02
bootstrap_samples: 1000
seed: 7
confidence: 0.95
strata:
  code:
    primary_metric: pass_at_k
    max_regression: 0.0
  chat:
    max_regression: 0.05
overall:
  max_regression: 0.01
)";

// Two strata of 60 items: "chat" scored by rougeL, "code" by pass_at_k. Candidate chat
// scores are the baseline's minus `chat_shift` plus small noise; code is unchanged.
std::pair<Results, Results> make_pair(double chat_shift) {
  std::mt19937_64 random(5);
  std::uniform_real_distribution<double> score(0.2, 0.8);
  std::normal_distribution<double> noise(0.0, 0.01);
  Results base;
  Results cand;
  base.model_id = "base";
  cand.model_id = "cand";
  for (int i = 0; i < 60; ++i) {
    ItemResult item;
    item.id = "chat" + std::to_string(i);
    item.stratum = "chat";
    item.scores["rougeL"] = score(random);
    base.items.push_back(item);
    item.scores["rougeL"] -= chat_shift + noise(random);
    cand.items.push_back(item);
  }
  for (int i = 0; i < 60; ++i) {
    ItemResult item;
    item.id = "code" + std::to_string(i);
    item.stratum = "code";
    item.scores["pass_at_k"] = i % 3 ? 1.0 : 0.0;
    base.items.push_back(item);
    cand.items.push_back(item);
  }
  aggregate(base);
  aggregate(cand);
  return {base, cand};
}

GateReport gate_for(double chat_shift) {
  auto [base, cand] = make_pair(chat_shift);
  return run_gate(base, "base.json", cand, "cand.json", parse_gate_policy(kPolicy, "gate.yaml"), "gate.yaml");
}

std::string policy_error(const std::string& text) {
  try {
    parse_gate_policy(text, "gate.yaml");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

TEST(GatePolicy, ParsesDefaultsAndOverrides) {
  const GatePolicy policy = parse_gate_policy(kPolicy, "gate.yaml");
  EXPECT_EQ(policy.metric_for("chat"), "rougeL");
  EXPECT_EQ(policy.metric_for("code"), "pass_at_k");
  EXPECT_EQ(policy.metric_for("other"), "rougeL");
  EXPECT_DOUBLE_EQ(policy.max_regression_for("chat"), 0.05);
  EXPECT_DOUBLE_EQ(policy.max_regression_for("code"), 0.0);
  EXPECT_DOUBLE_EQ(policy.max_regression_for("other"), 0.02);
  EXPECT_EQ(policy.bootstrap.samples, 1000);
  EXPECT_EQ(policy.bootstrap.seed, 7u);
  ASSERT_TRUE(policy.overall_max_regression.has_value());
  EXPECT_DOUBLE_EQ(*policy.overall_max_regression, 0.01);
}

TEST(GatePolicy, DefaultsWhenKeysAbsent) {
  const GatePolicy policy = parse_gate_policy("primary_metric: f1\n", "gate.yaml");
  EXPECT_EQ(policy.bootstrap.samples, 2000);
  EXPECT_DOUBLE_EQ(policy.bootstrap.confidence, 0.95);
  EXPECT_DOUBLE_EQ(policy.max_regression, 0.0);
  EXPECT_FALSE(policy.overall_max_regression.has_value());
}

TEST(GatePolicy, RejectsBadValues) {
  EXPECT_NE(policy_error("primary_metric: f1\nmax_regresion: 0.1\n").find("key max_regresion: unknown key"),
            std::string::npos);
  EXPECT_NE(policy_error("max_regression: -0.1\n").find("key max_regression"), std::string::npos);
  EXPECT_NE(policy_error("confidence: 95\n").find("key confidence"), std::string::npos);
  EXPECT_NE(policy_error("bootstrap_samples: many\n").find("key bootstrap_samples"), std::string::npos);
  EXPECT_NE(policy_error("strata:\n  code:\n    max_regression: x\n").find("key strata.code.max_regression"),
            std::string::npos);
  EXPECT_NE(policy_error("strata: [1, 2]\n").find("key strata"), std::string::npos);
  EXPECT_NE(policy_error("a: [\n").find("invalid YAML"), std::string::npos);
  EXPECT_NE(policy_error("").find("empty"), std::string::npos);
  EXPECT_NE(policy_error("strata:\n  [a, b]: {}\n").find("gate.yaml"), std::string::npos);
}

TEST(GateRule, FailsOnlyWhenIntervalExcludesTolerance) {
  EXPECT_EQ(judge({-0.05, -0.07, -0.03}, 0.02), Verdict::kFail);
  EXPECT_EQ(judge({-0.05, -0.07, -0.02}, 0.02), Verdict::kInconclusive);  // upper == -tolerance
  EXPECT_EQ(judge({-0.03, -0.08, 0.01}, 0.02), Verdict::kInconclusive);
  EXPECT_EQ(judge({-0.01, -0.05, 0.03}, 0.02), Verdict::kPass);
  EXPECT_EQ(judge({0.0, 0.0, 0.0}, 0.0), Verdict::kPass);
}

TEST(Gate, SameModelPasses) {
  auto [base, unused] = make_pair(0.0);
  const GateReport report =
      run_gate(base, "base.json", base, "base.json", parse_gate_policy(kPolicy, "gate.yaml"), "gate.yaml");
  EXPECT_TRUE(report.passed());
  for (const GateRow& row : report.strata) {
    EXPECT_EQ(row.delta.delta.mean, 0.0);
    EXPECT_EQ(row.verdict, Verdict::kPass);
  }
}

TEST(Gate, LargeRegressionFailsItsStratum) {
  const GateReport report = gate_for(0.10);  // chat tolerates 0.05
  ASSERT_EQ(report.strata.size(), 2u);
  EXPECT_EQ(report.strata[0].delta.stratum, "chat");
  EXPECT_NEAR(report.strata[0].delta.delta.mean, -0.10, 0.01);
  EXPECT_EQ(report.strata[0].verdict, Verdict::kFail);
  EXPECT_EQ(report.strata[1].verdict, Verdict::kPass);
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.failed_names(), (std::vector<std::string>{"chat", "overall"}));
}

TEST(Gate, RegressionWithinTolerancePasses) {
  const GateReport report = gate_for(0.03);  // chat tolerates 0.05; overall delta ~0.015 vs 0.01
  EXPECT_EQ(report.strata[0].verdict, Verdict::kPass);
  EXPECT_EQ(report.failed_names(), (std::vector<std::string>{"overall"}));
}

TEST(Gate, PolicyStratumMissingFromResults) {
  auto [base, cand] = make_pair(0.0);
  const GatePolicy policy = parse_gate_policy("primary_metric: rougeL\nstrata:\n  chta: {}\n", "gate.yaml");
  try {
    run_gate(base, "base.json", cand, "cand.json", policy, "gate.yaml");
    FAIL() << "unknown stratum accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("gate.yaml: key strata.chta"), std::string::npos) << e.what();
  }
}

TEST(GateReport, MarkdownHasRowPerStratum) {
  const std::string markdown = format_gate_markdown(gate_for(0.10));
  EXPECT_NE(markdown.find("## stepdown gate: fail (chat, overall)"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("| chat | rougeL | 60 |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("| code | pass_at_k | 60 | 0.6667 | 0.6667 | +0.0000 | [+0.0000, +0.0000] | 0.0000 | pass |"),
            std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("| overall | mixed | 120 |"), std::string::npos) << markdown;
}

TEST(GateReport, JunitHasFailureWithNumbers) {
  const std::string xml = format_gate_junit(gate_for(0.10));
  EXPECT_NE(xml.find("tests=\"3\" failures=\"2\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testcase classname=\"stepdown.gate\" name=\"chat\">\n      <failure message=\"regression: CI "
                     "upper bound"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("tolerance 0.0500"), std::string::npos) << xml;
  EXPECT_EQ(xml_escape("a<b & \"c\"\x01"), "a&lt;b &amp; &quot;c&quot;\xEF\xBF\xBD");
}

TEST(GateReport, JsonListsFailures) {
  const nlohmann::json root = nlohmann::json::parse(format_gate_json(gate_for(0.10)));
  EXPECT_FALSE(root["passed"].get<bool>());
  EXPECT_EQ(root["strata"][0]["verdict"], "fail");
  EXPECT_EQ(root["strata"].size(), 2u);
}

// End to end through the CLI: exit codes and written files.
class GateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("stepdown_gate_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "gate.yaml") << kPolicy;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int run(const std::string& args) {
    const std::string command =
        test::cli_path().string() + " --log-level off gate " + args + " >" + (dir_ / "stdout").string() + " 2>" +
        (dir_ / "stderr").string();
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string read(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string files(const std::string& base, const std::string& cand) {
    return "--baseline " + (dir_ / base).string() + " --candidate " + (dir_ / cand).string() + " --policy " +
           (dir_ / "gate.yaml").string();
  }

  std::filesystem::path dir_;
};

TEST_F(GateCli, ExitCodes) {
  auto [base, cand] = make_pair(0.10);
  write_results(dir_ / "base.json", base);
  write_results(dir_ / "cand.json", cand);

  EXPECT_EQ(run(files("base.json", "base.json")), 0) << read("stderr");
  EXPECT_EQ(run(files("base.json", "cand.json") + " --markdown " + (dir_ / "gate.md").string() + " --junit " +
                (dir_ / "gate.xml").string()),
            1)
      << read("stderr");
  EXPECT_NE(read("gate.md").find("fail (chat, overall)"), std::string::npos);
  EXPECT_NE(read("gate.xml").find("<failure"), std::string::npos);

  EXPECT_EQ(run(files("base.json", "cand.json") + " --json"), 1);
  EXPECT_FALSE(nlohmann::json::parse(read("stdout"))["passed"].get<bool>());
}

TEST_F(GateCli, BadInputExitsTwo) {
  auto [base, cand] = make_pair(0.0);
  write_results(dir_ / "base.json", base);
  cand.items.pop_back();
  write_results(dir_ / "short.json", cand);
  std::ofstream(dir_ / "broken.json") << "{\"format\": \"stepdown.results\", \"items\": [";

  EXPECT_EQ(run(files("base.json", "short.json")), 2);
  EXPECT_NE(read("stderr").find("only in " + (dir_ / "base.json").string() + ": code59"), std::string::npos)
      << read("stderr");
  EXPECT_EQ(run(files("base.json", "broken.json")), 2);
  EXPECT_NE(read("stderr").find("broken.json"), std::string::npos) << read("stderr");
  EXPECT_EQ(run(files("base.json", "missing.json")), 2);

  std::ofstream(dir_ / "gate.yaml") << "primary_metric: rougeL\nseed: -3\n";
  EXPECT_EQ(run(files("base.json", "base.json")), 2);
  EXPECT_NE(read("stderr").find("key seed"), std::string::npos) << read("stderr");
}

}  // namespace
}  // namespace stepdown::eval
