#pragma once
// Scoring predictions produced elsewhere: a JSONL file of {prediction, reference} pairs
// scored with one metric (`stepdown score`).
#include <filesystem>
#include <string>
#include <vector>

#include "stepdown/eval/metrics.h"

namespace stepdown::eval {

struct PairScores {
  std::string metric;
  std::vector<double> scores;  // one per non-blank line, in file order
  std::vector<size_t> lines;   // 1-based line number of each score
  double mean = 0.0;
};

// Scores every line of `input`. A line has a string `prediction` and the fields the
// metric reads, named as in a suite: `reference`, `pattern`, `pattern_mode`, `schema`, `tests`.
// Throws FormatError naming the file, line and field for a malformed or incomplete line,
// and for a file with no pairs.
PairScores score_pairs(const std::filesystem::path& input, const Metric& metric);

}  // namespace stepdown::eval
