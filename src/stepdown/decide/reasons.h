#pragma once
// The decision in words. Quantization comes first, and INT8 is the default. INT4 is used
// only when INT8 misses the latency budget and every stratum tolerates INT4. A smaller
// architecture (prune, distill, quantize) is proposed only when quantization is not
// enough, and it suits narrow, stable tasks. Quality is measured on the team's own
// traffic, never on public leaderboards. Every sentence carries the numbers behind it.
#include <optional>
#include <string>
#include <vector>

#include "stepdown/decide/policy.h"
#include "stepdown/decide/record.h"

namespace stepdown::decide {

// The latency a budget is checked against on one device: measured p95 on the host,
// predicted elsewhere.
struct DeviceLatency {
  double ttft_ms = 0;
  double tpot_ms = 0;
  double e2e_ms = 0;
  bool predicted = false;
  bool fits_memory = true;
};

// Returns nullopt when the rung has neither a measurement for "host" nor a prediction for
// `device`.
std::optional<DeviceLatency> latency_on(const RungRecord& rung, const std::string& device, const Budget& budget);

struct BudgetMiss {
  std::string device;
  std::string limit;  // "TPOT p95", "TTFT p95", "E2E p95", "memory"
  double value = 0;   // ms, or MB for memory
  double budget = 0;
  bool predicted = false;
};

// Every limit of `budget` (and memory_mb) that the rung misses on `device`.
std::vector<BudgetMiss> budget_misses(const RungRecord& rung, const std::string& device, const Budget& budget,
                                      std::optional<double> memory_mb);

// Memory the rung needs in MB: every weight and the KV cache of one sequence at the full
// context, or the file size and the mean KV cache when the benchmark did not count them.
double memory_mb_needed(const RungRecord& rung);

// One sentence per budget miss and per failing stratum, or one saying the rung passes.
std::vector<std::string> explain_rung(const RungRecord& rung, const DecidePolicy& policy);

struct Recommendation {
  std::optional<std::string> rung;
  std::string label;
  std::string device;  // the target the budget was checked on (the first non-host device, else host)
  std::string model_file;
  std::string summary;
  std::vector<std::string> reasons;
  std::optional<std::string> next_step;
};

// Chooses the first rung with status "pass" and explains the choice against the other
// rungs; with none, explains why and states the next step.
Recommendation recommend(const std::vector<RungRecord>& rungs, const DecidePolicy& policy);

nlohmann::json to_json(const Recommendation& recommendation);

}  // namespace stepdown::decide
