#include "stepdown/bench/summary.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "stepdown/core/error.h"

namespace stepdown::bench {

namespace {

// `sorted` ascending and non-empty.
double nearest_rank(const std::vector<double>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * n));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

double percentile(std::span<const double> samples, double p) {
  if (samples.empty()) raise<InvalidArgument>("percentile of an empty sample set");
  if (!(p > 0.0 && p <= 100.0)) raise<InvalidArgument>("percentile {} is outside (0, 100]", p);
  std::vector<double> sorted(samples.begin(), samples.end());
  std::sort(sorted.begin(), sorted.end());
  return nearest_rank(sorted, p);
}

Summary summarize(std::span<const double> samples) {
  Summary summary;
  if (samples.empty()) return summary;
  std::vector<double> sorted(samples.begin(), samples.end());
  std::sort(sorted.begin(), sorted.end());
  summary.count = static_cast<int64_t>(sorted.size());
  summary.min = sorted.front();
  summary.p50 = nearest_rank(sorted, 50.0);
  summary.p95 = nearest_rank(sorted, 95.0);
  summary.p99 = nearest_rank(sorted, 99.0);
  summary.max = sorted.back();
  summary.mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(sorted.size());
  return summary;
}

}  // namespace stepdown::bench
