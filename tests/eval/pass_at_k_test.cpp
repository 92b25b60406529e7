// pass@k against exact rational values from tests/golden/pass_at_k.py.
#include "stepdown/eval/pass_at_k.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/suite.h"
#include "test_paths.h"

namespace stepdown::eval {
namespace {

TEST(PassAtK, MatchesExactRationals) {
  std::ifstream in(test::source_dir() / "tests" / "golden" / "pass_at_k.json");
  ASSERT_TRUE(in) << "missing fixture; run tests/golden/pass_at_k.py";
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 20u);
  for (const auto& row : cases) {
    const int n = row["n"];
    const int c = row["c"];
    const int k = row["k"];
    // The product form loses at most a few ulps per factor: 1e-12 absolute.
    EXPECT_NEAR(pass_at_k(n, c, k), row["pass_at_k"].get<double>(), 1e-12) << "n=" << n << " c=" << c << " k=" << k;
  }
}

TEST(PassAtK, EdgeCases) {
  EXPECT_EQ(pass_at_k(10, 0, 1), 0.0);
  EXPECT_EQ(pass_at_k(10, 0, 10), 0.0);
  EXPECT_EQ(pass_at_k(10, 6, 5), 1.0);   // n - c = 4 < k
  EXPECT_EQ(pass_at_k(10, 10, 1), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(10, 3, 1), 0.3);  // pass@1 is c / n
}

TEST(PassAtK, LargeNStaysFinite) {
  const double p = pass_at_k(1000000, 10, 1000);
  EXPECT_GT(p, 0.0);
  EXPECT_LT(p, 1.0);
  // 1 - (1 - k/n)^c approximates it closely when c << n.
  EXPECT_NEAR(p, 1.0 - std::pow(1.0 - 1000.0 / 1000000.0, 10), 1e-5);
}

TEST(PassAtK, RejectsInvalidCounts) {
  EXPECT_THROW(pass_at_k(0, 0, 1), InvalidArgument);
  EXPECT_THROW(pass_at_k(5, 6, 1), InvalidArgument);
  EXPECT_THROW(pass_at_k(5, -1, 1), InvalidArgument);
  EXPECT_THROW(pass_at_k(5, 2, 0), InvalidArgument);
  EXPECT_THROW(pass_at_k(5, 2, 6), InvalidArgument);
}

TEST(PassAtK, ScoresSandboxedSamples) {
  CodeTestRequest item;
  item.tests = "assert square(3) == 9\nassert square(-2) == 4\n";
  const std::vector<std::string> samples = {
      "def square(x):\n    return x * x\n",
      "def square(x):\n    return x + x\n",  // right for 2 only
      "def square(x):\n    return x ** 2\n",
      "def square(x)\n",  // syntax error
  };
  const CodeSamplesScore score = score_code_samples(item, samples, 2);
  EXPECT_EQ(score.n, 4);
  EXPECT_EQ(score.c, 2);
  ASSERT_EQ(score.runs.size(), 4u);
  EXPECT_EQ(score.runs[0].status, SandboxStatus::kPass);
  EXPECT_EQ(score.runs[1].status, SandboxStatus::kFail);
  EXPECT_EQ(score.runs[3].status, SandboxStatus::kFail);
  // 1 - C(2, 2) / C(4, 2) = 1 - 1/6
  EXPECT_NEAR(score.pass_at_k, 5.0 / 6.0, 1e-12);
}

TEST(PassAtK, NoSamplesIsRejected) {
  EXPECT_THROW(score_code_samples(CodeTestRequest{}, {}, 1), InvalidArgument);
}

TEST(PassAtK, ExtractsFencedCode) {
  EXPECT_EQ(extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone."), "def f():\n    return 1\n");
  EXPECT_EQ(extract_code("~~~\nx = 1\n~~~"), "x = 1\n");
  EXPECT_EQ(extract_code("```py\nunclosed = 2\n"), "unclosed = 2\n");
  EXPECT_EQ(extract_code("plain = 3\n"), "plain = 3\n");
}

TEST(PassAtK, MetricScoresThroughRegistry) {
  MetricRegistry registry;
  add_code_metrics(registry);
  ASSERT_TRUE(registry.contains("pass_at_k"));
  const std::unique_ptr<Metric> metric = registry.create("pass_at_k");
  EXPECT_FALSE(metric->needs_reference());

  SuiteItem item;
  item.id = "sq";
  item.tests = {"assert square(3) == 9\n", "assert square(0) == 0\n"};
  EXPECT_EQ(metric->score("```python\ndef square(x):\n    return x * x\n```", item), 1.0);
  // Passes the second test program only: every program must pass.
  EXPECT_EQ(metric->score("def square(x):\n    return 0\n", item), 0.0);
}

TEST(PassAtK, MetricChecksItem) {
  MetricRegistry registry;
  add_code_metrics(registry);
  const std::unique_ptr<Metric> metric = registry.create("pass_at_k");
  SuiteItem item;
  EXPECT_THROW(metric->check_item(item), InvalidArgument);  // no tests
  item.tests = {"assert True\n"};
  EXPECT_NO_THROW(metric->check_item(item));
  item.metadata = {{"language", "rust"}};
  EXPECT_THROW(metric->check_item(item), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::eval
