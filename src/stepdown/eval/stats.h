#pragma once
// Per-stratum and overall quality deltas between a baseline and a candidate run of the
// same suite, paired by item id, each with a seeded paired-bootstrap interval.
#include <functional>
#include <string>
#include <vector>

#include "stepdown/eval/bootstrap.h"
#include "stepdown/eval/results.h"

namespace stepdown::eval {

struct StratumDelta {
  std::string stratum;  // a stratum name, or "overall" for all items together
  std::string metric;   // the primary metric compared ("mixed" overall when strata differ)
  int64_t n = 0;        // paired items
  double baseline_mean = 0.0;
  double candidate_mean = 0.0;
  MeanInterval delta;  // candidate minus baseline: mean and interval
};

struct DeltaReport {
  std::vector<StratumDelta> strata;  // sorted by stratum name
  StratumDelta overall;
};

// Returns the name of the primary metric for a stratum.
using PrimaryMetricFn = std::function<std::string(const std::string& stratum)>;

// Pairs baseline and candidate items by id and computes per-stratum deltas of each
// stratum's primary metric, and the overall delta over all items (each item compared on
// its own stratum's primary metric). Each stratum's bootstrap is seeded with
// derive_seed(options.seed, stratum); the overall one with derive_seed(seed, "overall").
// Raises FormatError naming the files when ids do not match (listing up to 20 of them),
// when an item's stratum differs between the files, or when an item lacks its primary
// metric.
DeltaReport compute_deltas(const Results& baseline, const std::string& baseline_source, const Results& candidate,
                           const std::string& candidate_source, const PrimaryMetricFn& primary_metric,
                           const BootstrapOptions& options);

}  // namespace stepdown::eval
