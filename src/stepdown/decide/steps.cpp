#include "stepdown/decide/steps.h"

#include <httplib.h>

#include <fstream>
#include <sstream>

#include "stepdown/bench/compute_probe.h"
#include "stepdown/bench/latency.h"
#include "stepdown/bench/latency_predict.h"
#include "stepdown/bench/latency_report.h"
#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/core/progress.h"
#include "stepdown/core/sha256.h"
#include "stepdown/engine/local_engine.h"
#include "stepdown/engine/openai_engine.h"
#include "stepdown/eval/eval_runner.h"
#include "stepdown/eval/judge.h"
#include "stepdown/eval/pass_at_k.h"
#include "stepdown/io/model_file.h"
#include "stepdown/io/model_summary.h"
#include "stepdown/model/weights.h"
#include "stepdown/quant/quantize_model.h"

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot read the cache entry", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    raise<FormatError>("{}: the cache entry is not valid JSON ({}); delete it and run again", path.string(), e.what());
  }
}

std::unique_ptr<engine::LocalEngine> local_engine(const fs::path& model, const std::optional<fs::path>& tokenizer,
                                                  int threads) {
  engine::LocalEngineOptions options;
  options.model_path = model;
  options.tokenizer_path = tokenizer;
  options.threads = threads;
  options.batch = 8;
  return std::make_unique<engine::LocalEngine>(options);
}

}  // namespace

eval::MetricRegistry decide_metric_registry() {
  eval::MetricRegistry registry = eval::MetricRegistry::with_text_metrics();
  eval::add_code_metrics(registry);
  eval::add_missing_judge_metric(registry);
  return registry;
}

BuiltModel build_model(const StepCache& cache, const BuildRequest& request) {
  QuantizeKeyInputs inputs;
  inputs.source_sha256 = request.source_sha256;
  inputs.scheme = request.scheme;
  inputs.method = request.method;
  inputs.params = request.params;
  inputs.calibration_sha256 = request.calibration_sha256;
  inputs.calib_samples = request.calib_samples;
  inputs.calib_seq_len = request.calib_seq_len;
  inputs.seed = request.seed;
  inputs.tool_version = STEPDOWN_VERSION;
  const std::string key = quantize_key(inputs);

  BuiltModel built;
  std::optional<fs::path> dir = cache.find("quantize", key);
  built.reused = dir.has_value();
  if (!dir) {
    StepCache::Pending pending = cache.begin("quantize", key);
    quant::QuantizeOptions options;
    options.model = request.source;
    options.tokenizer = request.tokenizer;
    options.scheme = request.scheme;
    options.output = pending.dir() / "model.gguf";
    options.threads = request.threads;
    options.method = request.method;
    options.method_params = request.params;
    options.calibration = request.calibration;
    options.calib_samples = request.calib_samples;
    options.calib_seq_len = request.calib_seq_len;
    options.seed = request.seed;
    quant::quantize_model(options);
    dir = pending.commit();
  }
  built.model = *dir / "model.gguf";
  built.manifest = quant::manifest_path_for(built.model);
  built.manifest_json = read_json(built.manifest);
  built.sha256 = built.manifest_json.at("output").at("sha256").get<std::string>();
  return built;
}

BenchOutcome bench_model(const StepCache& cache, const BenchRequest& request) {
  const std::string key = bench_key(request.model_sha256, request.host_id, request.prompt_tokens,
                                    request.output_tokens, request.repetitions, request.warmup, STEPDOWN_VERSION);
  BenchOutcome outcome;
  if (std::optional<fs::path> dir = cache.find("bench", key)) {
    outcome.file = *dir / "bench.json";
    outcome.report = read_json(outcome.file);
    outcome.reused = true;
    return outcome;
  }

  io::OpenOptions open_options;
  open_options.tokenizer_path = request.tokenizer;
  const io::ModelFile file = io::open_model_file(request.model, open_options);
  const io::ModelSummary summary = io::summarize_model(file);
  const model::ModelWeights weights = model::load_weights(file);

  bench::LatencyOptions options;
  options.prompt_tokens = request.prompt_tokens;
  options.decode_tokens = request.output_tokens;
  options.repetitions = request.repetitions;
  options.warmup = request.warmup;
  options.threads = request.threads;
  // The climb probes bandwidth once for every rung; a probe per rung would only add noise.
  options.measure_bandwidth = false;
  Progress progress(request.progress_label + " bench", options.warmup + options.repetitions);
  const bench::LatencyReport report = bench::measure_latency(weights, options, [&](int done, int) {
    progress.update(done, done <= options.warmup ? "warm-up" : "timed");
  });
  progress.finish();

  outcome.report = bench::to_json(report);
  outcome.report["bits_per_weight"] = summary.bits_per_weight;
  outcome.report["parameters"] = summary.parameters;
  const bench::ModelCost cost = bench::model_cost(weights, request.prompt_tokens, request.output_tokens, "");
  outcome.report["cost"] = {{"weight_bytes_per_token", cost.weight_bytes_per_token},
                            {"kv_bytes_per_token", cost.kv_bytes_per_token},
                            {"flops_per_token", cost.flops_per_token},
                            {"prefill_flops_per_token", cost.prefill_flops_per_token},
                            {"resident_bytes", cost.resident_bytes}};
  StepCache::Pending pending = cache.begin("bench", key);
  write_file_atomic(pending.dir() / "bench.json", outcome.report.dump(2) + "\n");
  outcome.file = pending.commit() / "bench.json";
  return outcome;
}

EvalOutcome eval_model(const StepCache& cache, const EvalRequest& request) {
  const std::string key = eval_key(request.model_sha256, request.suite_sha256, "", STEPDOWN_VERSION);
  EvalOutcome outcome;
  if (std::optional<fs::path> dir = cache.find("eval", key)) {
    outcome.file = *dir / "results.json";
    outcome.results = eval::read_results(outcome.file);
    outcome.reused = true;
    return outcome;
  }

  const eval::MetricRegistry registry = decide_metric_registry();
  const std::unique_ptr<engine::LocalEngine> engine = local_engine(request.model, request.tokenizer, request.threads);
  const std::vector<engine::GenerationResult> outputs =
      eval::generate_items(request.items, *engine, request.progress_label + " eval");
  eval::Results results;
  results.tool_version = STEPDOWN_VERSION;
  results.items = eval::score_items(request.items, outputs, registry, eval::MetricOptions{});
  eval::aggregate(results);
  results.model_id = request.model.filename().string();
  results.model_sha256 = request.model_sha256;
  results.suite_path = request.suite_path.string();
  results.suite_sha256 = request.suite_sha256;

  StepCache::Pending pending = cache.begin("eval", key);
  eval::write_results(pending.dir() / "results.json", results);
  outcome.file = pending.commit() / "results.json";
  outcome.results = std::move(results);
  return outcome;
}

GoldenOutcome make_golden_suite(const StepCache& cache, const GoldenRequest& request) {
  const std::string generator =
      request.endpoint_url.empty() ? "" : request.endpoint_url + " model=" + request.api_model;
  const std::string key = eval_key(request.endpoint_url.empty() ? request.model_sha256 : "", request.suite_sha256,
                                   generator, STEPDOWN_VERSION);
  GoldenOutcome outcome;
  if (std::optional<fs::path> dir = cache.find("golden", key)) {
    outcome.file = *dir / "golden.jsonl";
    outcome.items = eval::read_suite(outcome.file, decide_metric_registry());
    outcome.reused = true;
    return outcome;
  }

  std::unique_ptr<engine::Engine> engine;
  if (request.endpoint_url.empty()) {
    engine = local_engine(request.model, request.tokenizer, request.threads);
  } else {
    engine::OpenAiEngineOptions options;
    options.base_url = request.endpoint_url;
    options.model = request.api_model;
    options.api_key_env = request.api_key_env;
    engine = std::make_unique<engine::OpenAiEngine>(options);
  }
  outcome.items = eval::make_goldens(request.items, *engine);
  StepCache::Pending pending = cache.begin("golden", key);
  eval::write_suite(pending.dir() / "golden.jsonl", outcome.items);
  outcome.file = pending.commit() / "golden.jsonl";
  return outcome;
}

HostProbes probe_host(const StepCache& cache, const std::string& host_id, int threads) {
  const std::string key = sha256_hex(nlohmann::json{{"kind", "host-probe"}, {"host", host_id},
                                                    {"tool_version", STEPDOWN_VERSION}}.dump());
  HostProbes probes;
  nlohmann::json json;
  if (std::optional<fs::path> dir = cache.find("host-probe", key)) {
    json = read_json(*dir / "probes.json");
    spdlog::info("host probes: reused {}", (*dir / "probes.json").string());
  } else {
    spdlog::info("host probes: measuring peak compute and weight streaming per format");
    bench::ComputeProbeOptions compute;
    compute.threads = threads;
    bench::StreamingProbeOptions streaming;
    streaming.threads = threads;
    json = {{"peak_tflops", bench::measure_host_compute(compute)},
            {"streaming_gb_per_s", bench::measure_host_streaming(streaming)}};
    StepCache::Pending pending = cache.begin("host-probe", key);
    write_file_atomic(pending.dir() / "probes.json", json.dump(2) + "\n");
    pending.commit();
  }
  probes.peak_tflops = json.at("peak_tflops").get<std::map<std::string, double>>();
  probes.streaming_gb_per_s = json.at("streaming_gb_per_s").get<std::map<std::string, double>>();
  return probes;
}

void check_endpoint_reachable(const std::string& url, const std::string& source) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || !url.starts_with("http")) {
    raise<InvalidArgument>("{}: endpoint.url '{}' is invalid; expected http://HOST:PORT[/v1]", source, url);
  }
  const size_t path_start = url.find('/', scheme_end + 3);
  const std::string scheme_host_port = url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "/v1" : url.substr(path_start);
  while (path.size() > 1 && path.back() == '/') path.pop_back();

  httplib::Client client(scheme_host_port);
  client.set_connection_timeout(3, 0);
  client.set_read_timeout(5, 0);
  // Any HTTP status proves a server is there; only a transport failure means unreachable.
  const httplib::Result result = client.Get(path + "/models");
  if (!result) {
    raise<InvalidArgument>("{}: endpoint {} is unreachable ({}); start the server or remove 'endpoint' from the policy",
                           source, url, httplib::to_string(result.error()));
  }
}

}  // namespace stepdown::decide
