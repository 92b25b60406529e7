// allocate_levels against exhaustive search on small instances, and on cases whose optimum
// is known by construction.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "stepdown/core/error.h"
#include "stepdown/quant/mixed_precision.h"

namespace stepdown::quant {
namespace {

// The minimum total cost over every level combination within `budget`, by enumeration.
double brute_force_cost(const std::vector<UnitChoices>& units, uint64_t budget) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<size_t> level(units.size(), 0);
  while (true) {
    uint64_t bytes = 0;
    double cost = 0.0;
    for (size_t u = 0; u < units.size(); ++u) {
      bytes += units[u].bytes[level[u]];
      cost += units[u].cost[level[u]];
    }
    if (bytes <= budget) best = std::min(best, cost);
    size_t u = 0;
    while (u < units.size() && ++level[u] == units[u].bytes.size()) level[u++] = 0;
    if (u == units.size()) return best;
  }
}

TEST(MixedAllocator, MatchesBruteForceOnRandomInstances) {
  std::mt19937_64 rng(7);
  for (int instance = 0; instance < 300; ++instance) {
    const size_t n_units = 1 + rng() % 7;
    const size_t n_levels = 2 + rng() % 3;
    // A random block size makes the byte counts share a divisor, as real formats do.
    const uint64_t block = 1 + rng() % 40;
    std::vector<UnitChoices> units(n_units);
    uint64_t cheapest = 0;
    uint64_t dearest = 0;
    for (UnitChoices& unit : units) {
      uint64_t bytes = block * (1 + rng() % 20);
      double cost = 1.0 + static_cast<double>(rng() % 1000) / 100.0;
      for (size_t j = 0; j < n_levels; ++j) {
        unit.bytes.push_back(bytes);
        unit.cost.push_back(cost);
        bytes += block * (rng() % 15);
        cost *= static_cast<double>(rng() % 100) / 100.0;
      }
      cheapest += unit.bytes.front();
      dearest += unit.bytes.back();
    }
    const uint64_t budget = cheapest + rng() % (dearest - cheapest + 1);

    const Allocation got = allocate_levels(units, budget);
    const double expected = brute_force_cost(units, budget);

    ASSERT_EQ(got.level.size(), n_units) << "instance " << instance;
    EXPECT_LE(got.bytes, budget) << "instance " << instance;
    EXPECT_NEAR(got.cost, expected, 1e-9) << "instance " << instance;
    uint64_t bytes = 0;
    double cost = 0.0;
    for (size_t u = 0; u < n_units; ++u) {
      bytes += units[u].bytes[got.level[u]];
      cost += units[u].cost[got.level[u]];
    }
    EXPECT_EQ(bytes, got.bytes) << "instance " << instance;
    EXPECT_DOUBLE_EQ(cost, got.cost) << "instance " << instance;
  }
}

TEST(MixedAllocator, SpendsBytesOnTheMostSensitiveUnits) {
  // Three equal units, low = 10 bytes, high = 20 bytes; room for exactly two at high.
  // Costs are the KLD increase at low (0 at high), so the two largest get high.
  std::vector<UnitChoices> units = {
      {{10, 20}, {0.5, 0.0}},
      {{10, 20}, {0.1, 0.0}},
      {{10, 20}, {0.9, 0.0}},
  };
  const Allocation got = allocate_levels(units, 50);
  ASSERT_EQ(got.level.size(), 3u);
  EXPECT_EQ(got.level[0], 1u);
  EXPECT_EQ(got.level[1], 0u);
  EXPECT_EQ(got.level[2], 1u);
  EXPECT_EQ(got.bytes, 50u);
  EXPECT_DOUBLE_EQ(got.cost, 0.1);
}

TEST(MixedAllocator, PrefersTwoCheapUpgradesOverOneDearOne) {
  // A greedy pick by cost alone would upgrade unit 0 (largest cost) and fill the budget.
  // Upgrading units 1 and 2 instead removes more cost for the same bytes.
  std::vector<UnitChoices> units = {
      {{100, 200}, {1.0, 0.0}},
      {{50, 100}, {0.7, 0.0}},
      {{50, 100}, {0.7, 0.0}},
  };
  const Allocation got = allocate_levels(units, 300);
  EXPECT_EQ(got.level[0], 0u);
  EXPECT_EQ(got.level[1], 1u);
  EXPECT_EQ(got.level[2], 1u);
  EXPECT_DOUBLE_EQ(got.cost, 1.0);
}

TEST(MixedAllocator, NeverExceedsBudgetByOneByte) {
  std::vector<UnitChoices> units = {
      {{10, 20}, {0.5, 0.0}},
      {{10, 20}, {0.4, 0.0}},
  };
  const Allocation got = allocate_levels(units, 29);
  EXPECT_EQ(got.bytes, 20u);
  EXPECT_DOUBLE_EQ(got.cost, 0.9);
}

TEST(MixedAllocator, ThreeLevelsPickMiddle) {
  // Budget for the middle level everywhere, or high on one and low on the other.
  std::vector<UnitChoices> units = {
      {{10, 15, 20}, {0.6, 0.1, 0.0}},
      {{10, 15, 20}, {0.6, 0.1, 0.0}},
  };
  const Allocation got = allocate_levels(units, 30);
  EXPECT_EQ(got.level[0], 1u);
  EXPECT_EQ(got.level[1], 1u);
  EXPECT_DOUBLE_EQ(got.cost, 0.2);
}

TEST(MixedAllocator, RejectsBudgetBelowCheapest) {
  std::vector<UnitChoices> units = {{{10, 20}, {0.5, 0.0}}, {{10, 20}, {0.4, 0.0}}};
  EXPECT_THROW(allocate_levels(units, 19), InvalidArgument);
}

TEST(MixedAllocator, RejectsMismatchedCosts) {
  std::vector<UnitChoices> units = {{{10, 20}, {0.5}}};
  EXPECT_THROW(allocate_levels(units, 100), InvalidArgument);
}

TEST(MixedAllocator, RejectsNonFiniteCost) {
  std::vector<UnitChoices> units = {{{10, 20}, {std::numeric_limits<double>::quiet_NaN(), 0.0}}};
  EXPECT_THROW(allocate_levels(units, 100), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::quant
