#pragma once
// The results of one `stepdown eval` run: what `stepdown eval` writes as results.json and
// what `stepdown gate` reads back for the baseline and the candidate.
//
// results.json (format_version 1):
//   {
//     "format": "stepdown.results", "format_version": 1,
//     "tool_version": "0.1.0",
//     "model": {"id": "SmolLM2-135M-Instruct.Q4_1.gguf", "sha256": "<hex>"},
//     "suite": {"path": "suite.jsonl", "sha256": "<hex>"},
//     "judge": {"engine": "openai:http://... model=m", "prompt_version": "judge-v1"},  (optional)
//     "items": [{"id": "q17", "stratum": "faq", "output": "...",
//                "scores": {"rougeL": 0.42, "exact_match": 0.0},
//                "prompt_tokens": 31, "output_tokens": 57, "latency_ms": 812.5}, ...],
//     "strata": {"faq": {"n": 40, "metrics": {"rougeL": {"n": 40, "mean": 0.47}}}, ...},
//     "overall": {"n": 120, "metrics": {"rougeL": {"n": 120, "mean": 0.51}}}
//   }
// A metric's aggregate counts only the items that carry that metric, so a stratum may mix
// items scored by different metrics.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace stepdown::eval {

inline constexpr int kResultsFormatVersion = 1;

struct ItemResult {
  std::string id;       // unique within one results file
  std::string stratum;  // empty strings are rejected; suites without strata use "default"
  std::string output;   // the generated text
  std::map<std::string, double> scores;  // metric name -> score, finite
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  double latency_ms = 0.0;  // wall time of this item's generation
};

struct MetricAggregate {
  int64_t n = 0;      // items that carry the metric
  double mean = 0.0;  // mean score over those items
};

struct Aggregate {
  int64_t n = 0;  // items
  std::map<std::string, MetricAggregate> metrics;
};

struct Results {
  std::string tool_version;
  std::string model_id;
  std::string model_sha256;
  std::string suite_path;
  std::string suite_sha256;
  // The judge behind the `judge` metric, when the suite uses it; empty otherwise.
  std::string judge_engine;
  std::string judge_prompt_version;
  std::vector<ItemResult> items;
  std::map<std::string, Aggregate> strata;  // stratum name -> aggregate over its items
  Aggregate overall;
};

// Computes the per-stratum and overall aggregates of `results.items` into `results`.
void aggregate(Results& results);

// Parses results.json text. Every error is a FormatError that names `source` (a file name
// for messages) and the JSON path of the bad field, e.g. `items[3].scores.rougeL`, with
// what was expected and what was found. Checks: required fields and their types, finite
// scores and latencies, unique item ids, and stored aggregates that match the items.
Results parse_results(const std::string& text, const std::string& source);

// Reads and parses a results file; IoError when it cannot be read.
Results read_results(const std::filesystem::path& path);

// Serialises `results` (with aggregates recomputed from the items) as indented JSON.
std::string format_results(const Results& results);

// Writes `results` to `path` atomically: a reader never sees a half-written file.
void write_results(const std::filesystem::path& path, const Results& results);

}  // namespace stepdown::eval
