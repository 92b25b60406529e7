// Known-answer tests of the paired bootstrap and of per-stratum deltas.
#include "stepdown/eval/stats.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/bootstrap.h"

namespace stepdown::eval {
namespace {

// z such that P(|Z| < z) = 0.95 for a standard normal Z.
constexpr double kZ95 = 1.959963984540054;

Results make_results(const std::vector<std::pair<std::string, double>>& strata_scores) {
  Results results;
  results.tool_version = "0.1.0";
  for (size_t i = 0; i < strata_scores.size(); ++i) {
    ItemResult item;
    item.id = "item" + std::to_string(i);
    item.stratum = strata_scores[i].first;
    item.scores["rougeL"] = strata_scores[i].second;
    results.items.push_back(item);
  }
  aggregate(results);
  return results;
}

std::string rougeL(const std::string&) { return "rougeL"; }

TEST(Bootstrap, QuantileInterpolatesLikeNumpy) {
  const std::vector<double> sorted = {1.0, 2.0, 4.0, 8.0};
  // numpy.quantile([1, 2, 4, 8], [0, 0.25, 0.5, 0.9, 1]) = [1, 1.75, 3, 6.8, 8]
  EXPECT_DOUBLE_EQ(quantile_sorted(sorted, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile_sorted(sorted, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile_sorted(sorted, 0.5), 3.0);
  EXPECT_DOUBLE_EQ(quantile_sorted(sorted, 0.9), 6.8);
  EXPECT_DOUBLE_EQ(quantile_sorted(sorted, 1.0), 8.0);
}

TEST(Bootstrap, UniformIndexStaysInRange) {
  std::mt19937_64 random(7);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 30000; ++i) counts[uniform_index(random, 3)] += 1;
  for (const int count : counts) EXPECT_NEAR(count, 10000, 500);
}

TEST(Bootstrap, SameSeedSameInterval) {
  const std::vector<double> d = {0.1, -0.2, 0.3, 0.0, 0.5, -0.4, 0.2};
  const MeanInterval a = paired_bootstrap(d, {500, 42, 0.95});
  const MeanInterval b = paired_bootstrap(d, {500, 42, 0.95});
  const MeanInterval c = paired_bootstrap(d, {500, 43, 0.95});
  EXPECT_EQ(a.lower, b.lower);
  EXPECT_EQ(a.upper, b.upper);
  EXPECT_TRUE(a.lower != c.lower || a.upper != c.upper);
}

TEST(Bootstrap, RejectsEmptyAndBadOptions) {
  const std::vector<double> none;
  const std::vector<double> one = {1.0};
  EXPECT_THROW(paired_bootstrap(none, {}), InvalidArgument);
  EXPECT_THROW(paired_bootstrap(one, {0, 1, 0.95}), InvalidArgument);
  EXPECT_THROW(paired_bootstrap(one, {10, 1, 1.0}), InvalidArgument);
}

TEST(Bootstrap, DeriveSeedSeparatesNames) {
  EXPECT_EQ(derive_seed(1, "faq"), derive_seed(1, "faq"));
  EXPECT_NE(derive_seed(1, "faq"), derive_seed(1, "code"));
  EXPECT_NE(derive_seed(1, "faq"), derive_seed(2, "faq"));
}

TEST(Deltas, IdenticalResultsGiveZero) {
  const Results results = make_results({{"a", 0.1}, {"a", 0.7}, {"b", 0.3}, {"b", 0.9}, {"b", 0.4}});
  const DeltaReport report = compute_deltas(results, "base.json", results, "cand.json", rougeL, {});
  ASSERT_EQ(report.strata.size(), 2u);
  for (const StratumDelta& s : report.strata) {
    EXPECT_EQ(s.delta.mean, 0.0) << s.stratum;
    EXPECT_EQ(s.delta.lower, 0.0) << s.stratum;
    EXPECT_EQ(s.delta.upper, 0.0) << s.stratum;
  }
  EXPECT_EQ(report.strata[1].n, 3);
  EXPECT_DOUBLE_EQ(report.strata[1].baseline_mean, (0.3 + 0.9 + 0.4) / 3);
  EXPECT_EQ(report.overall.n, 5);
  EXPECT_EQ(report.overall.delta.lower, 0.0);
  EXPECT_EQ(report.overall.delta.upper, 0.0);
}

TEST(Deltas, ConstantShiftGivesDegenerateInterval) {
  std::vector<std::pair<std::string, double>> base_scores;
  std::vector<std::pair<std::string, double>> cand_scores;
  // Scores chosen so that every difference is the same double (powers of two apart).
  for (int i = 0; i < 50; ++i) {
    const double x = 0.25 + 0.0078125 * i;
    base_scores.push_back({i % 2 ? "a" : "b", x});
    cand_scores.push_back({i % 2 ? "a" : "b", x - 0.125});
  }
  const Results base = make_results(base_scores);
  const Results cand = make_results(cand_scores);
  const DeltaReport report = compute_deltas(base, "base.json", cand, "cand.json", rougeL, {});
  for (const StratumDelta& s : report.strata) {
    EXPECT_NEAR(s.delta.mean, -0.125, 1e-15) << s.stratum;
    EXPECT_EQ(s.delta.lower, s.delta.mean) << s.stratum;
    EXPECT_EQ(s.delta.upper, s.delta.mean) << s.stratum;
  }
  EXPECT_NEAR(report.overall.delta.mean, -0.125, 1e-15);
  EXPECT_EQ(report.overall.delta.lower, report.overall.delta.upper);
}

TEST(Deltas, MatchesNormalTheoryOnLargeSample) {
  // n = 5000 differences ~ N(0.1, 1). The percentile interval should agree with
  // mean +- 1.96 * s / sqrt(n). Tolerance: 0.25 standard errors per endpoint, about four
  // times the Monte Carlo spread of a 2.5% quantile estimated from B = 2000 resamples.
  std::mt19937_64 random(2024);
  std::normal_distribution<double> normal(0.1, 1.0);
  std::vector<double> d(5000);
  for (double& x : d) x = normal(random);
  double mean = 0.0;
  for (const double x : d) mean += x;
  mean /= d.size();
  double ss = 0.0;
  for (const double x : d) ss += (x - mean) * (x - mean);
  const double se = std::sqrt(ss / (d.size() - 1)) / std::sqrt(static_cast<double>(d.size()));

  const MeanInterval ci = paired_bootstrap(d, {2000, 11, 0.95});
  EXPECT_DOUBLE_EQ(ci.mean, mean);
  EXPECT_NEAR(ci.lower, mean - kZ95 * se, 0.25 * se);
  EXPECT_NEAR(ci.upper, mean + kZ95 * se, 0.25 * se);
}

TEST(Deltas, IntervalCoversTrueMean) {
  // 400 repetitions of n = 200 draws from N(0.3, 1): a 95% interval should cover 0.3
  // about 380 times. The binomial standard deviation is about 4.4, and the percentile
  // interval runs slightly narrow at this n, so accept [0.91, 0.98].
  std::mt19937_64 random(99);
  std::normal_distribution<double> normal(0.3, 1.0);
  int covered = 0;
  const int repetitions = 400;
  std::vector<double> d(200);
  for (int r = 0; r < repetitions; ++r) {
    for (double& x : d) x = normal(random);
    const MeanInterval ci = paired_bootstrap(d, {1000, static_cast<uint64_t>(r), 0.95});
    covered += ci.lower <= 0.3 && 0.3 <= ci.upper;
  }
  const double coverage = static_cast<double>(covered) / repetitions;
  EXPECT_GE(coverage, 0.91);
  EXPECT_LE(coverage, 0.98);
}

TEST(Deltas, UnmatchedIdsAreListed) {
  const Results base = make_results({{"a", 0.1}, {"a", 0.2}, {"a", 0.3}});
  Results cand = make_results({{"a", 0.1}, {"a", 0.2}});
  cand.items[1].id = "extra";
  try {
    compute_deltas(base, "base.json", cand, "cand.json", rougeL, {});
    FAIL() << "unmatched ids accepted";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("2 only in base.json: item1, item2"), std::string::npos) << message;
    EXPECT_NE(message.find("1 only in cand.json: extra"), std::string::npos) << message;
  }
}

TEST(Deltas, MissingPrimaryMetricNamesItem) {
  const Results base = make_results({{"a", 0.1}, {"a", 0.2}});
  Results cand = base;
  cand.items[1].scores = {{"f1", 0.5}};
  try {
    compute_deltas(base, "base.json", cand, "cand.json", rougeL, {});
    FAIL() << "missing metric accepted";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("cand.json: field items[1].scores.rougeL"), std::string::npos) << message;
  }
}

TEST(Deltas, StratumMismatchIsRejected) {
  const Results base = make_results({{"a", 0.1}, {"a", 0.2}});
  const Results cand = make_results({{"a", 0.1}, {"b", 0.2}});
  EXPECT_THROW(compute_deltas(base, "base.json", cand, "cand.json", rougeL, {}), FormatError);
}

}  // namespace
}  // namespace stepdown::eval
