// The decision in words, on constructed rung records: which rung is chosen, and that every
// sentence carries the numbers behind it.
#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "stepdown/decide/reasons.h"

namespace stepdown::decide {
namespace {

using ::testing::HasSubstr;

DecidePolicy policy_with_tpot(double tpot_ms) {
  DecidePolicy policy;
  policy.source = "p.yaml";
  policy.devices = {"host", "jetson-orin-nano"};
  policy.budget.tpot_p95_ms = tpot_ms;
  policy.budget.output_tokens = 32;
  return policy;
}

QualityRow stratum(const std::string& name, double delta, double half_width, double tolerance, bool pass) {
  QualityRow row;
  row.name = name;
  row.metric = name == "code" ? "pass_at_k" : "rougeL";
  row.n = 20;
  row.baseline = 0.8;
  row.candidate = 0.8 + delta;
  row.delta = delta;
  row.ci_low = delta - half_width;
  row.ci_high = delta + half_width;
  row.tolerance = tolerance;
  row.verdict = pass ? "pass" : "fail";
  row.pass = pass;
  return row;
}

// A rung measured at `host_tpot` ms on the host and predicted at `device_tpot` ms on the
// Jetson, with the given strata.
RungRecord rung(const std::string& name, const std::string& label, double host_tpot, double device_tpot,
                std::vector<QualityRow> strata, const DecidePolicy& policy) {
  RungRecord record;
  record.name = name;
  record.label = label;
  record.measured = MeasuredLatency{};
  record.measured->tpot_p95_ms = host_tpot;
  record.measured->ttft_p95_ms = 5;
  record.predicted["jetson-orin-nano"] = LatencyPrediction{8, device_tpot, 8 + 31 * device_tpot, true};
  record.weight_bytes_per_token = 100e6;
  record.file_bytes = 100'000'000;
  record.strata = std::move(strata);
  record.overall = stratum("overall", 0, 0.01, 0, true);
  record.overall->gated = false;
  record.meets_quality = std::all_of(record.strata.begin(), record.strata.end(), [](auto& r) { return r.pass; });
  for (const std::string& device : policy.devices) {
    record.meets_budget[device] = budget_misses(record, device, policy.budget, policy.memory_mb).empty();
  }
  const bool budget_ok = record.meets_budget["host"] && record.meets_budget["jetson-orin-nano"];
  record.status = budget_ok && record.meets_quality ? "pass" : "fail";
  return record;
}

TEST(Reasons, InconclusiveStratumIsNamed) {
  const DecidePolicy policy = policy_with_tpot(48);
  RungRecord int8 = rung("int8", "INT8 weight-only (q8_0)", 12, 31, {stratum("summarization", -0.183, 0.15, 0.15, true)},
                         policy);
  int8.strata[0].ci_low = -0.336;
  int8.strata[0].ci_high = -0.031;
  int8.strata[0].verdict = "inconclusive";
  const std::vector<RungRecord> rungs = {
      rung("baseline", "Baseline (as given)", 40, 95, {stratum("summarization", 0, 0, 0.15, true)}, policy), int8};
  const Recommendation recommendation = recommend(rungs, policy);
  ASSERT_TRUE(recommendation.rung.has_value());
  EXPECT_EQ(*recommendation.rung, "int8");
  EXPECT_THAT(recommendation.summary, HasSubstr("the gate is inconclusive for summarization -0.183 (95% CI -0.336 "
                                                "to -0.031, tolerance 0.15"));
  EXPECT_THAT(recommendation.summary, ::testing::Not(HasSubstr("stays within every stratum's tolerance")));
}

TEST(Reasons, Int8ChosenSaysInt4NotNeeded) {
  const DecidePolicy policy = policy_with_tpot(48);
  const std::vector<RungRecord> rungs = {
      rung("baseline", "Baseline (as given)", 40, 95, {stratum("code", 0, 0, 0.02, true)}, policy),
      rung("int8", "INT8 weight-only (q8_0)", 12, 31, {stratum("code", -0.01, 0.02, 0.02, true)}, policy)};
  const Recommendation recommendation = recommend(rungs, policy);
  ASSERT_TRUE(recommendation.rung.has_value());
  EXPECT_EQ(*recommendation.rung, "int8");
  EXPECT_EQ(recommendation.device, "jetson-orin-nano");
  EXPECT_EQ(recommendation.summary,
            "INT8 weight-only (q8_0) meets the 48 ms TPOT p95 budget on host (measured) and jetson-orin-nano "
            "(predicted) and stays within every stratum's tolerance.");
  EXPECT_THAT(recommendation.reasons,
              ::testing::Contains("Baseline (as given) has TPOT p95 95.0 ms, above the 48.0 ms budget on "
                                  "jetson-orin-nano (predicted)"));
  EXPECT_THAT(recommendation.reasons, ::testing::Contains(HasSubstr("INT4 is not needed")));
  EXPECT_THAT(recommendation.reasons, ::testing::Contains(HasSubstr("team's own traffic (20 items in 1 strata)")));
  EXPECT_FALSE(recommendation.next_step.has_value());
}

TEST(Reasons, Int4OnlyWhenInt8MissesBudget) {
  const DecidePolicy policy = policy_with_tpot(20);
  const std::vector<RungRecord> rungs = {
      rung("baseline", "Baseline (as given)", 40, 95, {}, policy),
      rung("int8", "INT8 weight-only (q8_0)", 12, 31, {}, policy),
      rung("int4", "INT4 round-to-nearest (q4_0)", 7, 17, {stratum("code", -0.01, 0.01, 0.02, true)}, policy)};
  const Recommendation recommendation = recommend(rungs, policy);
  ASSERT_TRUE(recommendation.rung.has_value());
  EXPECT_EQ(*recommendation.rung, "int4");
  EXPECT_THAT(recommendation.reasons,
              ::testing::Contains("INT8 weight-only (q8_0) has TPOT p95 31.0 ms, above the 20.0 ms budget on "
                                  "jetson-orin-nano (predicted)"));
  EXPECT_THAT(recommendation.reasons,
              ::testing::Contains(
                  "INT4 is used because INT8 misses the latency budget and every stratum tolerates INT4"));
}

TEST(Reasons, QualityMissStatesDropAndTolerance) {
  const DecidePolicy policy = policy_with_tpot(20);
  const RungRecord int4 = rung("int4", "INT4 round-to-nearest (q4_0)", 7, 17,
                               {stratum("code", -0.09, 0.03, 0.02, false), stratum("chat", 0, 0.01, 0.02, true)},
                               policy);
  EXPECT_EQ(int4.status, "fail");
  const std::vector<std::string> reasons = explain_rung(int4, policy);
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(reasons[0],
            "INT4 round-to-nearest (q4_0): the `code` stratum's pass_at_k drops 9.0% ± 3.0% (tolerance 2.0%, n=20)");
}

TEST(Reasons, NoRungFastEnoughNamesSmallerArchitecture) {
  const DecidePolicy policy = policy_with_tpot(5);
  std::vector<RungRecord> rungs = {rung("baseline", "Baseline (as given)", 40, 95, {}, policy),
                                   rung("int4", "INT4 round-to-nearest (q4_0)", 7, 20, {}, policy)};
  rungs[1].weight_bytes_per_token = 40e6;
  const Recommendation recommendation = recommend(rungs, policy);
  EXPECT_FALSE(recommendation.rung.has_value());
  EXPECT_THAT(recommendation.summary, HasSubstr("No rung meets every constraint."));
  ASSERT_TRUE(recommendation.next_step.has_value());
  // The lightest rung (40 MB per token) is predicted at 20 ms on the Jetson: 5 ms needs
  // 0.25x the bytes, 10 MB, which is 10e6 * 8 / 4.5 = 17.8M parameters at q4_0.
  EXPECT_THAT(*recommendation.next_step, HasSubstr("prune, then distill, then quantize"));
  EXPECT_THAT(*recommendation.next_step, HasSubstr("TPOT p95 <= 5 ms on jetson-orin-nano"));
  EXPECT_THAT(*recommendation.next_step, HasSubstr("0.25x"));
  EXPECT_THAT(*recommendation.next_step, HasSubstr("10.0 MB"));
  EXPECT_THAT(*recommendation.next_step, HasSubstr("17.8M parameters"));
}

TEST(Reasons, FastButLossyPointsAtCalibratedMethods) {
  const DecidePolicy policy = policy_with_tpot(20);
  const std::vector<RungRecord> rungs = {
      rung("baseline", "Baseline (as given)", 40, 95, {}, policy),
      rung("int4", "INT4 round-to-nearest (q4_0)", 7, 17, {stratum("code", -0.09, 0.03, 0.02, false)}, policy)};
  const Recommendation recommendation = recommend(rungs, policy);
  EXPECT_FALSE(recommendation.rung.has_value());
  ASSERT_TRUE(recommendation.next_step.has_value());
  EXPECT_THAT(*recommendation.next_step, HasSubstr("calibrated method"));
  EXPECT_THAT(recommendation.reasons, ::testing::Contains(HasSubstr("drops 9.0% ± 3.0%")));
}

TEST(Reasons, HostBudgetUsesMeasuredP95) {
  DecidePolicy policy = policy_with_tpot(10);
  policy.budget.ttft_p95_ms = 4;
  policy.budget.e2e_p95_ms = 300;
  const RungRecord record = rung("int8", "INT8", 12, 5, {}, policy);
  const std::vector<BudgetMiss> misses = budget_misses(record, "host", policy.budget, std::nullopt);
  ASSERT_EQ(misses.size(), 3u);
  EXPECT_EQ(misses[0].limit, "TPOT p95");
  EXPECT_DOUBLE_EQ(misses[0].value, 12);
  EXPECT_FALSE(misses[0].predicted);
  EXPECT_EQ(misses[1].limit, "TTFT p95");
  EXPECT_DOUBLE_EQ(misses[1].value, 5);
  // 5 ms TTFT + 31 decode steps of 12 ms.
  EXPECT_EQ(misses[2].limit, "E2E p95");
  EXPECT_DOUBLE_EQ(misses[2].value, 5 + 31 * 12.0);
}

TEST(Reasons, MemoryBudgetCountsFileAndKvCache) {
  DecidePolicy policy = policy_with_tpot(1000);
  RungRecord record = rung("int8", "INT8", 1, 1, {}, policy);
  record.kv_bytes_per_token = 2e6;
  const std::vector<BudgetMiss> misses = budget_misses(record, "host", policy.budget, 90.0);
  ASSERT_EQ(misses.size(), 1u);
  EXPECT_EQ(misses[0].limit, "memory");
  EXPECT_DOUBLE_EQ(misses[0].value, 102);
}

}  // namespace
}  // namespace stepdown::decide
