#pragma once
// Building a suite from production traffic (`stepdown suite build`): assign each request
// a stratum, drop near-duplicate requests, and sample up to N requests per stratum with a
// seeded generator, so the same traffic, options and seed always give the same suite.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "stepdown/eval/metrics.h"
#include "stepdown/eval/suite.h"

namespace stepdown::eval {

// Requests whose prompt text matches `regex` (PCRE2, unanchored) belong to `stratum`.
struct StratumRule {
  std::string stratum;
  std::string regex;
};

// Reads a YAML list of {stratum, regex} mappings. Throws FormatError naming the file and
// the entry for a malformed file, a missing key or an invalid regex.
std::vector<StratumRule> read_stratum_rules(const std::filesystem::path& path);

struct SuiteBuildOptions {
  size_t per_stratum = 0;  // sample size per stratum; a smaller stratum is kept whole
  uint64_t seed = 0;
  // Stratum assignment: the first matching rule, or, with no rules, the string value of
  // this traffic field. A request with no match or no such field goes to default_stratum.
  std::vector<StratumRule> rules;
  std::string stratify_by = "stratum";
  std::string default_stratum = "other";
  // Near-duplicates: requests whose 3-word-shingle sets have Jaccard similarity at or
  // above the threshold; the first one in the traffic file is kept.
  bool deduplicate = true;
  double duplicate_threshold = 0.8;
  // Defaults for traffic lines that do not set `metric` or `max_tokens`.
  std::vector<std::string> default_metrics;
  int default_max_tokens = 128;
};

struct StratumSummary {
  std::string stratum;
  size_t requests = 0;    // traffic lines assigned to the stratum
  size_t duplicates = 0;  // of those, removed as near-duplicates
  size_t selected = 0;    // items in the suite
  bool kept_whole = false;  // fewer unique requests than per_stratum
};

struct SuiteBuildResult {
  std::vector<SuiteItem> items;         // by stratum name, then traffic order
  std::vector<StratumSummary> strata;   // by stratum name
  size_t requests = 0;                  // non-blank traffic lines
  size_t default_stratum_requests = 0;  // lines no rule or field assigned
  size_t duplicates = 0;
};

// Builds a suite from a traffic JSONL file (one request per line: `prompt` or
// `messages`, and any suite field; other fields are ignored). Every line must parse and
// name only metrics in `registry` with the arguments they need. Throws FormatError
// naming the file, line and field otherwise.
SuiteBuildResult build_suite(const std::filesystem::path& traffic, const SuiteBuildOptions& options,
                             const MetricRegistry& registry);

// Indices of the near-duplicates to drop from `texts`: every text whose 3-word-shingle
// Jaccard similarity with an earlier kept text is >= `threshold` (in (0, 1]). Words are
// runs of Unicode letters and digits, lowercased. Candidates come from MinHash
// locality-sensitive hashing and each is confirmed with the exact Jaccard similarity, so
// nothing below the threshold is dropped.
std::vector<size_t> find_near_duplicates(const std::vector<std::string>& texts, double threshold);

}  // namespace stepdown::eval
