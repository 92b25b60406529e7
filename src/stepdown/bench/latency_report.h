#pragma once
// A latency report as JSON for machines and as a plain-text table for people.
#include <string>

#include <nlohmann/json.hpp>

#include "stepdown/bench/latency.h"

namespace stepdown::bench {

// Every field of the report; times in milliseconds, rates in tokens/s, sizes in bytes,
// bandwidth in GB/s (1e9 bytes). Per-repetition and per-step samples are included.
nlohmann::json to_json(const LatencyReport& report);

// A short table: host, threads, pp/tg rates, TTFT and TPOT percentiles, bytes per token,
// bandwidth and efficiency, peak RSS.
std::string format_table(const LatencyReport& report);

}  // namespace stepdown::bench
