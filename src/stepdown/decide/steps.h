#pragma once
// The cached steps of one rung: build (quantize), bench (measure on the host) and eval
// (generate and score the suite). Each returns what it made and whether it came from the
// cache, and logs "reused" when it did.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/decide/cache.h"
#include "stepdown/decide/devices.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/results.h"
#include "stepdown/eval/suite.h"

namespace stepdown::decide {

struct BuiltModel {
  std::filesystem::path model;     // GGUF in the cache, or the source as given
  std::filesystem::path manifest;  // quantize manifest; empty for the source as given
  nlohmann::json manifest_json;    // null for the source as given
  std::string sha256;
  bool reused = false;
};

struct BuildRequest {
  std::filesystem::path source;
  std::optional<std::filesystem::path> tokenizer;
  std::string scheme;
  std::string method = "rtn";
  std::map<std::string, std::string> params;
  std::optional<std::filesystem::path> calibration;
  std::string calibration_sha256;
  int64_t calib_samples = 64;
  int64_t calib_seq_len = 256;
  uint64_t seed = 0;
  int threads = 0;
  std::string source_sha256;
};

BuiltModel build_model(const StepCache& cache, const BuildRequest& request);

struct BenchRequest {
  std::filesystem::path model;
  std::optional<std::filesystem::path> tokenizer;
  std::string model_sha256;
  std::string host_id;
  int64_t prompt_tokens = 128;
  int64_t output_tokens = 64;
  int repetitions = 3;
  int warmup = 1;
  int threads = 0;
  std::string progress_label;
};

// bench::to_json of the latency report, plus "bits_per_weight" and "parameters" of the
// model file.
struct BenchOutcome {
  nlohmann::json report;
  std::filesystem::path file;
  bool reused = false;
};

BenchOutcome bench_model(const StepCache& cache, const BenchRequest& request);

struct EvalRequest {
  std::filesystem::path model;
  std::optional<std::filesystem::path> tokenizer;
  std::string model_sha256;
  std::vector<eval::SuiteItem> items;  // with goldens
  std::filesystem::path suite_path;
  std::string suite_sha256;
  int threads = 0;
  std::string progress_label;
};

struct EvalOutcome {
  eval::Results results;
  std::filesystem::path file;
  bool reused = false;
};

EvalOutcome eval_model(const StepCache& cache, const EvalRequest& request);

// The source of the baseline's outputs: the local baseline model, or an endpoint.
struct GoldenRequest {
  std::filesystem::path model;
  std::optional<std::filesystem::path> tokenizer;
  std::string model_sha256;
  std::string endpoint_url;  // empty: the local model
  std::string api_model;
  std::string api_key_env;
  std::vector<eval::SuiteItem> items;
  std::string suite_sha256;
  int threads = 0;
};

struct GoldenOutcome {
  std::vector<eval::SuiteItem> items;
  std::filesystem::path file;  // golden suite JSONL in the cache
  bool reused = false;
};

GoldenOutcome make_golden_suite(const StepCache& cache, const GoldenRequest& request);

// Peak compute and weight streaming per precision on this host, measured once per host
// (bench/compute_probe.h) and cached under the host identity.
HostProbes probe_host(const StepCache& cache, const std::string& host_id, int threads);

// Checks that an OpenAI-compatible endpoint returns any HTTP response within a few seconds.
// Raises InvalidArgument naming the URL and the connection error otherwise.
void check_endpoint_reachable(const std::string& url, const std::string& source);

// The metric registry decide scores with: every text metric and the code metrics.
eval::MetricRegistry decide_metric_registry();

}  // namespace stepdown::decide
