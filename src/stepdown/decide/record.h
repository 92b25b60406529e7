#pragma once
// What the climb learns about each rung, and its JSON form in decision.json
// (schema "stepdown.decision/1"; docs/decide.md lists every field).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/decide/devices.h"

namespace stepdown::decide {

inline constexpr const char* kDecisionSchema = "stepdown.decision/1";

// Latency measured on the host by bench::measure_latency.
struct MeasuredLatency {
  std::string device = "host";
  double ttft_p50_ms = 0;
  double ttft_p95_ms = 0;
  double tpot_p50_ms = 0;
  double tpot_p95_ms = 0;
  double pp_tokens_per_s = 0;
  double tg_tokens_per_s = 0;
  double peak_rss_mb = 0;
};

// One stratum (or all items together) of the gate: candidate minus baseline.
struct QualityRow {
  std::string name;
  std::string metric;
  int64_t n = 0;
  double baseline = 0;
  double candidate = 0;
  double delta = 0;
  double ci_low = 0;
  double ci_high = 0;
  double tolerance = 0;
  bool gated = true;  // false for the overall row when the policy sets no overall tolerance
  std::string verdict = "pass";  // pass, inconclusive or fail; only fail fails the gate
  bool pass = true;
};

struct RungRecord {
  std::string name;
  std::string label;
  int rung_index = 0;
  std::string status = "skipped";  // pass, fail, skipped or error
  std::string method;
  std::string scheme;
  std::map<std::string, std::string> params;

  std::string model_file;  // relative to the output folder, or the source path for the baseline as given
  uint64_t file_bytes = 0;
  double bits_per_weight = 0;
  double weight_bytes_per_token = 0;
  double kv_bytes_per_token = 0;
  double flops_per_token = 0;
  double prefill_flops_per_token = 0;
  double resident_bytes = 0;  // every weight plus the KV cache at the full context
  std::string compute_precision;

  std::optional<MeasuredLatency> measured;
  std::map<std::string, LatencyPrediction> predicted;  // by device name

  std::optional<QualityRow> overall;
  std::vector<QualityRow> strata;

  std::map<std::string, bool> meets_budget;  // by device name
  bool meets_quality = false;
  std::vector<std::string> reasons;
  std::map<std::string, double> seconds;  // build, bench, eval
  std::vector<std::string> reused;        // steps taken from the cache: build, bench, eval
  std::string results_file;               // relative to the output folder
};

nlohmann::json to_json(const RungRecord& record);
nlohmann::json to_json(const QualityRow& row);
nlohmann::json to_json(const LatencyPrediction& prediction);

}  // namespace stepdown::decide
