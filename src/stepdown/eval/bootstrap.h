#pragma once
// Seeded paired bootstrap of a mean difference, with a percentile confidence interval.
//
// Determinism: the generator is std::mt19937_64, whose output sequence the C++ standard
// fixes for a given seed. Resample indices come from that output by rejection sampling
// (not std::uniform_int_distribution, whose algorithm differs between standard
// libraries), so the same seed gives bit-identical intervals on every platform.
#include <cstdint>
#include <span>
#include <string_view>

namespace stepdown::eval {

struct BootstrapOptions {
  int samples = 2000;        // B, the number of resamples
  uint64_t seed = 0;         // seeds std::mt19937_64
  double confidence = 0.95;  // two-sided level of the interval, in (0, 1)
};

struct MeanInterval {
  double mean = 0.0;   // mean of the input differences
  double lower = 0.0;  // lower bound of the percentile interval
  double upper = 0.0;  // upper bound
};

// Returns the mean of `differences` (candidate minus baseline, one per paired item) and
// its percentile bootstrap interval. The interval comes from B resamples of n indices
// drawn uniformly with replacement: it spans the (1 - confidence)/2 and
// (1 + confidence)/2 quantiles of the resample means, interpolated linearly between order
// statistics like numpy's default method. An empty input or invalid options raise
// InvalidArgument.
MeanInterval paired_bootstrap(std::span<const double> differences, const BootstrapOptions& options);

// Returns a uniform index in [0, n) from `random`'s 64-bit output by rejection sampling.
// `n` must be positive.
template <class Generator>
uint64_t uniform_index(Generator& random, uint64_t n) {
  // Outputs below 2^64 mod n would make the low residues more likely; skip them.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t r = random();
    if (r >= threshold) return r % n;
  }
}

// Returns the q-quantile (0 <= q <= 1) of sorted values by linear interpolation between
// order statistics: position q * (n - 1).
double quantile_sorted(std::span<const double> sorted, double q);

// Mixes a base seed with a name (FNV-1a, then splitmix64), so each stratum gets its own
// stream and its interval does not depend on which other strata the suite has.
uint64_t derive_seed(uint64_t seed, std::string_view name);

}  // namespace stepdown::eval
