// pass@k against exact rational values from tests/golden/pass_at_k.py.
#include "stepdown/eval/pass_at_k.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
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

}  // namespace
}  // namespace stepdown::eval
