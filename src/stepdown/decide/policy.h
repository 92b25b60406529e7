#pragma once
// The decision policy of `stepdown decide`: the model, the traffic or suite, the target
// devices and latency budget, the quality tolerance per stratum, and the rungs to try.
// Read from YAML (docs/decide.md has every key, examples/decide-policy.yaml an example),
// then overridden by command-line flags.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/eval/gate_policy.h"

namespace stepdown::decide {

struct Budget {
  std::optional<double> ttft_p95_ms;
  std::optional<double> tpot_p95_ms;
  std::optional<double> e2e_p95_ms;  // TTFT + (output_tokens - 1) * TPOT
  int64_t output_tokens = 64;        // decode steps per benchmark repetition, and e2e's length
  int64_t prompt_tokens = 128;       // prefill length of the benchmark and of TTFT
};

struct StratumTolerance {
  std::optional<double> max_regression;  // in the metric's units
  std::optional<std::string> metric;
};

struct Tolerance {
  double default_max_regression = 0.02;
  std::string metric = "rougeL";              // primary metric of strata that name none
  std::optional<double> overall;              // gates all items together when set
  std::map<std::string, StratumTolerance> strata;
};

// An OpenAI-compatible server that produces the baseline's outputs (goldens) instead of the
// local model.
struct Endpoint {
  std::string url;
  std::string api_model;
  std::string api_key_env = "OPENAI_API_KEY";
};

struct DecidePolicy {
  std::filesystem::path model;
  std::optional<std::filesystem::path> tokenizer;
  // Converts the model to this scheme first and uses the result as the baseline (a GGUF that
  // is itself quantized, converted to f32). Empty keeps the model as given.
  std::string baseline_scheme;
  std::optional<Endpoint> endpoint;

  // Exactly one of suite and traffic.
  std::optional<std::filesystem::path> suite;
  std::optional<std::filesystem::path> traffic;
  int64_t per_stratum = 20;
  uint64_t seed = 0;
  std::optional<int> max_tokens;  // caps every item's max_tokens
  std::optional<std::filesystem::path> calibration;  // default: the traffic (or the suite)
  int64_t calib_samples = 64;
  int64_t calib_seq_len = 256;

  std::vector<std::string> devices = {"host"};
  Budget budget;
  std::optional<double> memory_mb;
  Tolerance tolerance;
  std::vector<std::string> rungs;  // in ladder order; empty means every rung
  std::map<std::string, std::map<std::string, std::string>> rung_params;  // rung -> method params
  bool stop_at_first = true;  // false: climb every rung, for the report
  int threads = 0;

  int bench_repetitions = 3;
  int bench_warmup = 1;
  eval::BootstrapOptions gate;

  std::string source;  // the file name (or "<embedded default>") for messages
};

// Parses a policy from YAML text. Relative paths are resolved against `base_dir`. Unknown
// keys, wrong types and missing required keys raise FormatError naming `source`, the key
// path and its line, with what was expected and what was found.
DecidePolicy parse_decide_policy(const std::string& text, const std::string& source,
                                 const std::filesystem::path& base_dir);

// Reads a policy file; IoError when it cannot be read.
DecidePolicy read_decide_policy(const std::filesystem::path& path);

// Checks what parsing cannot: one of suite and traffic, a budget with at least one limit,
// known rung names in ladder order. Call after flags are applied. Raises InvalidArgument.
void validate_policy(const DecidePolicy& policy);

// The gate policy the tolerances describe, as `stepdown gate` reads it from gate.yaml.
eval::GatePolicy make_gate_policy(const DecidePolicy& policy);
std::string format_gate_policy_yaml(const DecidePolicy& policy);

// The effective policy as JSON, for decision.json and its SHA-256.
nlohmann::json policy_to_json(const DecidePolicy& policy);

}  // namespace stepdown::decide
