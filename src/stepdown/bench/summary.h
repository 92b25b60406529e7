#pragma once
// Order statistics of repeated timings.
#include <cstdint>
#include <span>

namespace stepdown::bench {

// Nearest-rank percentile: the smallest sample x such that at least p percent of the
// samples are <= x, i.e. the ceil(p / 100 * n)-th smallest (1-based). It is always an
// observed value, never an interpolation, and is non-decreasing in p. p in (0, 100];
// throws InvalidArgument for an empty span or p outside that range.
double percentile(std::span<const double> samples, double p);

struct Summary {
  int64_t count = 0;
  double min = 0.0;
  double p50 = 0.0;
  double p95 = 0.0;
  double p99 = 0.0;
  double max = 0.0;
  double mean = 0.0;
};

// Summary of `samples`; all zero when there are none.
Summary summarize(std::span<const double> samples);

}  // namespace stepdown::bench
