#include "stepdown/decide/climb.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>

#include "stepdown/bench/bandwidth.h"
#include "stepdown/bench/host_info.h"
#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/core/sha256.h"
#include "stepdown/core/utc_time.h"
#include "stepdown/decide/cache.h"
#include "stepdown/decide/interrupt.h"
#include "stepdown/decide/output_dir.h"
#include "stepdown/decide/reasons.h"
#include "stepdown/decide/record.h"
#include "stepdown/decide/render.h"
#include "stepdown/decide/rungs.h"
#include "stepdown/decide/steps.h"
#include "stepdown/eval/gate.h"
#include "stepdown/eval/suite_build.h"
#include "stepdown/quant/method.h"

namespace stepdown::decide {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void require_file(const std::optional<fs::path>& path, const char* key, const std::string& source) {
  if (path && !fs::exists(*path)) {
    raise<InvalidArgument>("{}: {} {} not found", source, key, path->string());
  }
}

// Bytes of a model file, or of every file in a Hugging Face model folder.
uint64_t path_bytes(const fs::path& path) {
  if (!fs::is_directory(path)) return fs::file_size(path);
  uint64_t bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  return bytes;
}

// Files a rung leaves in the cache, linked into rungs/<name>/ at the end.
struct RungFiles {
  fs::path model;
  fs::path manifest;
  fs::path bench;
  fs::path results;
};

// Everything the rungs share.
struct Climb {
  Climb(const DecidePolicy& policy_in, const StepCache& cache_in, std::vector<RungDefinition> rungs_in)
      : policy(policy_in), cache(cache_in), rungs(std::move(rungs_in)) {}

  const DecidePolicy& policy;
  const StepCache& cache;
  std::vector<RungDefinition> rungs;

  std::string source_sha256;
  std::optional<fs::path> calibration;
  std::string calibration_sha256;

  BuiltModel baseline;  // the baseline model: converted, or the source as given
  std::optional<fs::path> baseline_tokenizer;

  std::vector<eval::SuiteItem> golden_items;
  fs::path golden_file;
  std::string golden_sha256;

  bench::HostInfo host;
  double bandwidth_gbps = 0;
  std::string host_id;
  HostProbes probes;
  DeviceProfile host_profile;
  std::map<std::string, DeviceProfile> devices;
  std::vector<std::string> device_formats;

  eval::GatePolicy gate_policy;
  std::optional<eval::Results> baseline_results;
  std::optional<Efficiency> baseline_efficiency;  // host efficiency of the baseline at p95
  std::optional<Efficiency> baseline_median_efficiency;  // and at p50
  std::string baseline_precision;
  json predictor_error = json::array();
};

std::vector<RungDefinition> selected_rungs(const DecidePolicy& policy) {
  std::vector<RungDefinition> rungs;
  for (const RungDefinition& rung : ladder()) {
    const bool listed = policy.rungs.empty() ||
                        std::find(policy.rungs.begin(), policy.rungs.end(), rung.name) != policy.rungs.end();
    // The baseline is always measured and evaluated: every gate compares against it.
    if (listed || rung.name == "baseline") rungs.push_back(rung);
  }
  return rungs;
}

std::vector<eval::SuiteItem> load_suite(const DecidePolicy& policy) {
  const eval::MetricRegistry registry = decide_metric_registry();
  std::vector<eval::SuiteItem> items;
  if (policy.traffic) {
    eval::SuiteBuildOptions options;
    options.per_stratum = static_cast<size_t>(policy.per_stratum);
    options.seed = policy.seed;
    options.default_metrics = {policy.tolerance.metric};
    items = eval::build_suite(*policy.traffic, options, registry).items;
  } else {
    items = eval::read_suite(*policy.suite, registry);
  }
  if (items.empty()) raise<InvalidArgument>("{}: the suite has no items", policy.source);
  if (policy.max_tokens) {
    for (eval::SuiteItem& item : items) item.max_tokens = std::min(item.max_tokens, *policy.max_tokens);
  }
  return items;
}

QualityRow quality_row(const eval::GateRow& row) {
  QualityRow quality;
  quality.name = row.delta.stratum;
  quality.metric = row.delta.metric;
  quality.n = row.delta.n;
  quality.baseline = row.delta.baseline_mean;
  quality.candidate = row.delta.candidate_mean;
  quality.delta = row.delta.delta.mean;
  quality.ci_low = row.delta.delta.lower;
  quality.ci_high = row.delta.delta.upper;
  quality.tolerance = row.max_regression;
  quality.gated = row.gated;
  quality.verdict = eval::verdict_name(row.verdict);
  quality.pass = !row.gated || row.verdict != eval::Verdict::kFail;
  return quality;
}

ModelCost model_cost(const RungRecord& record, const Budget& budget) {
  ModelCost cost;
  cost.weight_bytes_per_token = record.weight_bytes_per_token;
  cost.kv_bytes_per_token = record.kv_bytes_per_token;
  cost.flops_per_token = record.flops_per_token;
  cost.prefill_flops_per_token = record.prefill_flops_per_token;
  cost.resident_bytes = record.resident_bytes;
  cost.compute_precision = record.compute_precision;
  cost.prompt_tokens = budget.prompt_tokens;
  cost.output_tokens = budget.output_tokens;
  return cost;
}

// Measures the rung on the host, then predicts it on every target device from the
// efficiency the host reached with this rung's own kernels.
void bench_rung(Climb& climb, RungRecord& record, const BuiltModel& built, const std::string& label,
                RungFiles& files) {
  const DecidePolicy& policy = climb.policy;
  BenchRequest request;
  request.model = built.model;
  request.tokenizer = record.name == "baseline" ? climb.baseline_tokenizer : std::nullopt;
  request.model_sha256 = built.sha256;
  request.host_id = climb.host_id;
  request.prompt_tokens = policy.budget.prompt_tokens;
  request.output_tokens = policy.budget.output_tokens;
  request.repetitions = policy.bench_repetitions;
  request.warmup = policy.bench_warmup;
  request.threads = policy.threads;
  request.progress_label = label;
  const auto start = Clock::now();
  const BenchOutcome bench = bench_model(climb.cache, request);
  record.seconds["bench"] = seconds_since(start);
  if (bench.reused) {
    record.reused.push_back("bench");
    spdlog::info("{} bench: reused {}", label, bench.file.string());
  }
  files.bench = bench.file;

  const json& report = bench.report;
  MeasuredLatency measured;
  measured.ttft_p50_ms = report.at("ttft_ms").at("p50").get<double>();
  measured.ttft_p95_ms = report.at("ttft_ms").at("p95").get<double>();
  measured.tpot_p50_ms = report.at("tpot_ms").at("p50").get<double>();
  measured.tpot_p95_ms = report.at("tpot_ms").at("p95").get<double>();
  measured.pp_tokens_per_s = report.at("prefill_tokens_per_second").get<double>();
  measured.tg_tokens_per_s = report.at("decode_tokens_per_second").get<double>();
  measured.peak_rss_mb = report.at("peak_rss_bytes").get<double>() / 1e6;
  record.measured = measured;

  const json& model_cost_json = report.at("cost");
  record.weight_bytes_per_token = model_cost_json.at("weight_bytes_per_token").get<double>();
  record.kv_bytes_per_token = model_cost_json.at("kv_bytes_per_token").get<double>();
  record.flops_per_token = model_cost_json.at("flops_per_token").get<double>();
  record.prefill_flops_per_token = model_cost_json.at("prefill_flops_per_token").get<double>();
  record.resident_bytes = model_cost_json.at("resident_bytes").get<double>();
  record.bits_per_weight = report.at("bits_per_weight").get<double>();

  const ModelCost cost = model_cost(record, policy.budget);
  const Efficiency own = calibrate(climb.host_profile, cost, measured.ttft_p95_ms, measured.tpot_p95_ms);
  if (!climb.baseline_efficiency) climb.baseline_efficiency = own;
  for (const auto& [name, device] : climb.devices) {
    if (name == "host") continue;
    record.predicted[name] = predict(device, cost, own);
  }

  // The host prediction uses the baseline's efficiency, spread over formats by the host's
  // streaming probe, so comparing it with this rung's measurement tests the latency model
  // across formats. The error is reported at the median, because a p95 of a few hundred
  // samples mostly measures other processes.
  if (climb.baseline_precision.empty()) climb.baseline_precision = record.compute_precision;
  const auto on_host = [&](const Efficiency& baseline) {
    return predict(climb.host_profile, cost, for_host_formats(baseline, climb.baseline_precision, climb.probes));
  };
  record.predicted["host"] = on_host(*climb.baseline_efficiency);
  const Efficiency median = calibrate(climb.host_profile, cost, measured.ttft_p50_ms, measured.tpot_p50_ms);
  if (!climb.baseline_median_efficiency) climb.baseline_median_efficiency = median;
  const double predicted_median = on_host(*climb.baseline_median_efficiency).tpot_ms;
  climb.predictor_error.push_back(
      {{"rung", record.name},
       {"scheme", record.scheme.empty() ? "as given" : record.scheme},
       {"device", "host"},
       {"metric", "tpot_p50_ms"},
       {"predicted", predicted_median},
       {"measured", measured.tpot_p50_ms},
       {"error_pct", 100 * (predicted_median - measured.tpot_p50_ms) / measured.tpot_p50_ms},
       {"calibration_point", record.name == climb.rungs.front().name}});
}

void eval_rung(Climb& climb, RungRecord& record, const BuiltModel& built, const std::string& label,
               RungFiles& files) {
  EvalRequest request;
  request.model = built.model;
  request.tokenizer = record.name == "baseline" ? climb.baseline_tokenizer : std::nullopt;
  request.model_sha256 = built.sha256;
  request.items = climb.golden_items;
  request.suite_path = "golden-suite.jsonl";
  request.suite_sha256 = climb.golden_sha256;
  request.threads = climb.policy.threads;
  request.progress_label = label;
  const auto start = Clock::now();
  const EvalOutcome outcome = eval_model(climb.cache, request);
  record.seconds["eval"] = seconds_since(start);
  if (outcome.reused) {
    record.reused.push_back("eval");
    spdlog::info("{} eval: reused {}", label, outcome.file.string());
  }
  files.results = outcome.file;
  record.results_file = "rungs/" + record.name + "/results.json";
  if (record.name == "baseline") climb.baseline_results = outcome.results;

  const eval::GateReport gate = eval::run_gate(*climb.baseline_results, "baseline-results.json", outcome.results,
                                               record.results_file, climb.gate_policy, "gate.yaml");
  record.strata.clear();
  for (const eval::GateRow& row : gate.strata) record.strata.push_back(quality_row(row));
  record.overall = quality_row(gate.overall);
  record.meets_quality = gate.passed();
}

BuiltModel build_rung(Climb& climb, const RungDefinition& rung, RungRecord& record, const std::string& label) {
  if (rung.name == "baseline") return climb.baseline;
  BuildRequest request;
  request.source = climb.policy.model;
  request.tokenizer = climb.policy.tokenizer;
  request.scheme = rung.scheme;
  request.method = rung.method;
  request.params = record.params;
  if (rung.method != "rtn") {
    request.calibration = climb.calibration;
    request.calibration_sha256 = climb.calibration_sha256;
  }
  request.calib_samples = climb.policy.calib_samples;
  request.calib_seq_len = climb.policy.calib_seq_len;
  request.seed = climb.policy.seed;
  request.threads = climb.policy.threads;
  request.source_sha256 = climb.source_sha256;
  spdlog::info("{} build: {} {}", label, rung.method, rung.scheme);
  const auto start = Clock::now();
  BuiltModel built = build_model(climb.cache, request);
  record.seconds["build"] = seconds_since(start);
  if (built.reused) {
    record.reused.push_back("build");
    spdlog::info("{} build: reused {}", label, built.model.string());
  }
  return built;
}

// Builds, measures, predicts, evaluates and gates one rung.
RungRecord climb_rung(Climb& climb, const RungDefinition& rung, const std::string& label, RungFiles& files) {
  const DecidePolicy& policy = climb.policy;
  RungRecord record;
  record.name = rung.name;
  record.label = rung.label;
  if (rung.name == "baseline" && !policy.baseline_scheme.empty()) {
    record.label = fmt::format("Baseline ({} conversion)", policy.baseline_scheme);
  }
  record.rung_index = rung.rung_index;
  record.method = rung.method;
  record.scheme = rung.name == "baseline" ? policy.baseline_scheme : rung.scheme;
  record.compute_precision = compute_precision(record.scheme, rung.method);
  if (const auto it = policy.rung_params.find(rung.name); it != policy.rung_params.end()) record.params = it->second;

  const bool registered = rung.method == "rtn" || quant::find_quant_method(rung.method) != nullptr;
  if (const std::optional<std::string> reason = skip_reason(rung, registered, climb.device_formats)) {
    record.status = "skipped";
    record.reasons.push_back(*reason);
    spdlog::info("{} skipped: {}", label, *reason);
    return record;
  }

  const BuiltModel built = build_rung(climb, rung, record, label);
  files.model = built.model;
  files.manifest = built.manifest;
  if (rung.condition == RungCondition::kOutliersFound && built.manifest_json.contains("method_details")) {
    // NOTE: assumes the outlier method reports the count of outlier features it kept in
    // higher precision as method_details.outlier_features; without that field the rung runs.
    const json& details = built.manifest_json["method_details"];
    if (details.contains("outlier_features") && details["outlier_features"].get<int64_t>() == 0) {
      record.status = "skipped";
      record.reasons.push_back("calibration found no activation outliers above the threshold");
      return record;
    }
  }
  record.model_file = rung.name == "baseline" && policy.baseline_scheme.empty()
                          ? policy.model.string()
                          : "rungs/" + rung.name + "/model.gguf";
  record.file_bytes = path_bytes(built.model);

  bench_rung(climb, record, built, label, files);
  for (const std::string& device : policy.devices) {
    record.meets_budget[device] = budget_misses(record, device, policy.budget, policy.memory_mb).empty();
  }
  const bool meets_budget = std::all_of(record.meets_budget.begin(), record.meets_budget.end(),
                                        [](const auto& entry) { return entry.second; });

  // A rung that misses the latency budget cannot be chosen, so its evaluation is skipped
  // unless stop_at_first is off. The baseline is always evaluated.
  if (meets_budget || !policy.stop_at_first || rung.name == "baseline") {
    eval_rung(climb, record, built, label, files);
  }
  record.status = meets_budget && record.meets_quality ? "pass" : "fail";
  record.reasons = explain_rung(record, policy);
  if (!record.overall) record.reasons.push_back("not evaluated, because it misses the budget");
  spdlog::info("{} {}: {}", label, record.status, record.reasons.empty() ? "" : record.reasons.front());
  return record;
}

json host_json(const Climb& climb, int threads) {
  json features = climb.host.cpu_features;
  return {{"cpu", climb.host.cpu_model},
          {"threads", threads > 0 ? threads : climb.host.hardware_threads},
          {"hardware_threads", climb.host.hardware_threads},
          {"openblas_coretype", climb.host.openblas_coretype},
          {"cpu_features", features},
          {"read_bandwidth_gbps", climb.bandwidth_gbps},
          {"decode_efficiency", climb.baseline_efficiency ? climb.baseline_efficiency->bandwidth : 0.0},
          {"native_formats", climb.host_profile.native_formats}};
}

json budget_json(const DecidePolicy& policy) {
  const auto optional = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return {{"ttft_p95_ms", optional(policy.budget.ttft_p95_ms)},
          {"tpot_p95_ms", optional(policy.budget.tpot_p95_ms)},
          {"e2e_p95_ms", optional(policy.budget.e2e_p95_ms)},
          {"output_tokens", policy.budget.output_tokens},
          {"prompt_tokens", policy.budget.prompt_tokens},
          {"memory_mb", optional(policy.memory_mb)}};
}

json manifest_json(const Climb& climb, const json& decision, const RungRecord* chosen, const RungFiles* files) {
  const DecidePolicy& policy = climb.policy;
  json transforms = json::array();
  if (!policy.baseline_scheme.empty()) {
    transforms.push_back({{"step", "baseline conversion"}, {"scheme", policy.baseline_scheme}, {"method", "rtn"}});
  }
  json manifest = {
      {"schema", "stepdown.manifest/1"},
      {"tool", "stepdown decide"},
      {"tool_version", STEPDOWN_VERSION},
      {"created", decision["created"]},
      {"device", decision["recommendation"]["device"]},
      {"source", {{"path", policy.model.string()}, {"sha256", climb.source_sha256}}},
      {"calibration", climb.calibration ? json{{"path", climb.calibration->string()},
                                                {"sha256", climb.calibration_sha256}}
                                          : json(nullptr)},
      {"suite", {{"path", "golden-suite.jsonl"}, {"sha256", climb.golden_sha256},
                 {"items", climb.golden_items.size()}}},
      {"policy_sha256", decision["policy_sha256"]},
  };

  if (chosen == nullptr) {
    manifest["model"] = nullptr;
    manifest["transforms"] = transforms;
    return manifest;
  }
  if (chosen->name != "baseline") {
    transforms.push_back({{"step", "quantize"}, {"rung", chosen->name}, {"scheme", chosen->scheme},
                          {"method", chosen->method}, {"params", chosen->params}});
  }

  manifest["model"] = {{"path", decision["recommendation"]["model_file"]},
                       {"rung", chosen->name}, {"sha256", decision["recommendation"]["sha256"]}};
  manifest["transforms"] = transforms;
  const json rung = to_json(*chosen);
  manifest["eval"] = rung["quality"];
  manifest["bench"] = rung["measured"];
  manifest["predicted"] = rung["predicted"];
  if (!files->manifest.empty() && fs::exists(files->manifest)) {
    std::ifstream in(files->manifest);
    manifest["quantize_manifest"] = json::parse(in);
  }
  return manifest;
}

// Writes every artifact into the staging folder.
void write_outputs(const Climb& climb, const fs::path& dir, const std::vector<RungRecord>& records,
                   const std::vector<RungFiles>& files, json& decision) {
  for (size_t i = 0; i < records.size(); ++i) {
    const RungRecord& record = records[i];
    if (record.status == "skipped" || record.status == "error") continue;
    const fs::path rung_dir = dir / "rungs" / record.name;
    fs::create_directories(rung_dir);
    if (record.model_file.starts_with("rungs/")) {
      link_or_copy(files[i].model, rung_dir / "model.gguf");
      if (!files[i].manifest.empty()) link_or_copy(files[i].manifest, rung_dir / "model.gguf.manifest.json");
    }
    if (!files[i].bench.empty()) link_or_copy(files[i].bench, rung_dir / "bench.json");
    if (!files[i].results.empty()) link_or_copy(files[i].results, rung_dir / "results.json");
  }
  link_or_copy(climb.golden_file, dir / "golden-suite.jsonl");
  eval::write_results(dir / "baseline-results.json", *climb.baseline_results);
  write_file_atomic(dir / "gate.yaml", format_gate_policy_yaml(climb.policy));

  const RungRecord* chosen = nullptr;
  const RungFiles* chosen_files = nullptr;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].status == "pass") {
      chosen = &records[i];
      chosen_files = &files[i];
      break;
    }
  }
  if (chosen != nullptr) {
    // Every built rung is a GGUF. The baseline as given keeps its own format: a single file
    // is linked under its extension, and a Hugging Face folder is referred to where it is.
    const fs::path& source = chosen_files->model;
    json& recommendation = decision["recommendation"];
    if (fs::is_directory(source)) {
      recommendation["model_file"] = source.string();
    } else {
      const std::string name = source.extension() == ".gguf" || chosen->name != "baseline"
                                   ? std::string("model.gguf")
                                   : "model" + source.extension().string();
      link_or_copy(source, dir / name);
      recommendation["model_file"] = name;
    }
    recommendation["sha256"] = sha256_path(source);
  }
  write_file_atomic(dir / "manifest.json", manifest_json(climb, decision, chosen, chosen_files).dump(2) + "\n");
  write_file_atomic(dir / "decision.json", decision.dump(2) + "\n");
  render_reports(decision, dir);
}

void prepare_inputs(Climb& climb, const fs::path& out_dir) {
  const DecidePolicy& policy = climb.policy;
  spdlog::info("decide: hashing {}", policy.model.string());
  climb.source_sha256 = sha256_path(policy.model);
  // Calibration defaults to the traffic, or to the suite when no traffic is given.
  climb.calibration = policy.calibration;
  if (!climb.calibration) climb.calibration = policy.traffic;
  if (!climb.calibration) climb.calibration = policy.suite;
  if (climb.calibration) climb.calibration_sha256 = sha256_path(*climb.calibration);

  // The baseline: the model as given, or converted first (a quantized GGUF to f32).
  if (policy.baseline_scheme.empty()) {
    climb.baseline.model = policy.model;
    climb.baseline.sha256 = climb.source_sha256;
    climb.baseline_tokenizer = policy.tokenizer;
  } else {
    BuildRequest request;
    request.source = policy.model;
    request.tokenizer = policy.tokenizer;
    request.scheme = policy.baseline_scheme;
    request.threads = policy.threads;
    request.source_sha256 = climb.source_sha256;
    climb.baseline = build_model(climb.cache, request);
    if (climb.baseline.reused) spdlog::info("baseline conversion: reused {}", climb.baseline.model.string());
  }

  // The suite and the baseline's outputs as its goldens.
  const std::vector<eval::SuiteItem> items = load_suite(policy);
  const fs::path suite_file = out_dir / "suite.jsonl";
  eval::write_suite(suite_file, items);
  GoldenRequest golden;
  golden.model = climb.baseline.model;
  golden.tokenizer = climb.baseline_tokenizer;
  golden.model_sha256 = climb.baseline.sha256;
  if (policy.endpoint) {
    golden.endpoint_url = policy.endpoint->url;
    golden.api_model = policy.endpoint->api_model;
    golden.api_key_env = policy.endpoint->api_key_env;
  }
  golden.items = items;
  golden.suite_sha256 = sha256_path(suite_file);
  golden.threads = policy.threads;
  const GoldenOutcome goldens = make_golden_suite(climb.cache, golden);
  if (goldens.reused) spdlog::info("goldens: reused {}", goldens.file.string());
  climb.golden_items = goldens.items;
  climb.golden_file = goldens.file;
  climb.golden_sha256 = sha256_path(goldens.file);

  // The host and the target devices.
  climb.host = bench::read_host_info();
  bench::BandwidthOptions bandwidth;
  bandwidth.threads = policy.threads;
  climb.bandwidth_gbps = bench::measure_read_bandwidth(bandwidth).gb_per_s;
  climb.host_id = host_identity(policy.threads);
  climb.probes = probe_host(climb.cache, climb.host_id, policy.threads);
  climb.host_profile = resolve_device("host", climb.bandwidth_gbps, climb.host, climb.probes);
  spdlog::info("host: {}, read bandwidth {:.1f} GB/s with {} threads", climb.host.cpu_model, climb.bandwidth_gbps,
               policy.threads);
  for (const std::string& name : policy.devices) {
    DeviceProfile device = resolve_device(name, climb.bandwidth_gbps, climb.host, climb.probes);
    for (const std::string& format : device.native_formats) climb.device_formats.push_back(format);
    climb.devices.emplace(name, std::move(device));
  }
}

}  // namespace

DecideOutcome run_decide(const DecideOptions& options) {
  const DecidePolicy& policy = options.policy;
  validate_policy(policy);

  // Bad input fails here, before any long work.
  require_file(policy.model, "model", policy.source);
  require_file(policy.tokenizer, "tokenizer", policy.source);
  require_file(policy.traffic, "traffic", policy.source);
  require_file(policy.suite, "suite", policy.source);
  require_file(policy.calibration, "calibration", policy.source);
  for (const std::string& device : policy.devices) resolve_device(device, 1.0, bench::HostInfo{}, HostProbes{});
  if (policy.endpoint) check_endpoint_reachable(policy.endpoint->url, policy.source);

  const InterruptGuard interrupt_guard;
  StagedDir staged(options.out_dir);
  const StepCache cache(options.cache_root.empty() ? default_cache_root() : options.cache_root);
  spdlog::info("decide: output {}, cache {}", options.out_dir.string(), cache.root().string());

  Climb climb(policy, cache, selected_rungs(policy));
  climb.gate_policy = make_gate_policy(policy);
  prepare_inputs(climb, staged.dir());

  std::vector<RungRecord> records;
  std::vector<RungFiles> files;
  const size_t total = climb.rungs.size();
  for (size_t i = 0; i < total; ++i) {
    const RungDefinition& rung = climb.rungs[i];
    const std::string label = fmt::format("[{}/{} {}]", i + 1, total, rung.name);
    RungFiles rung_files;
    RungRecord record;
    try {
      record = climb_rung(climb, rung, label, rung_files);
    } catch (const Error& e) {
      if (rung.name == "baseline") throw;
      spdlog::error("{} failed: {}", label, e.what());
      record.name = rung.name;
      record.label = rung.label;
      record.rung_index = rung.rung_index;
      record.method = rung.method;
      record.scheme = rung.scheme;
      record.status = "error";
      record.reasons = {e.what()};
      rung_files = RungFiles{};
    }
    records.push_back(record);
    files.push_back(rung_files);
    if (record.status == "pass" && policy.stop_at_first) break;
  }

  Recommendation recommendation = recommend(records, policy);
  for (RungRecord& record : records) {
    if (record.name == "smaller-architecture" && recommendation.next_step) {
      record.reasons.push_back(*recommendation.next_step);
    }
  }

  json rungs = json::array();
  for (const RungRecord& record : records) rungs.push_back(to_json(record));
  const json policy_json = policy_to_json(policy);
  json decision = {
      {"schema", kDecisionSchema},
      {"tool_version", STEPDOWN_VERSION},
      {"created", utc_now()},
      {"policy", policy_json},
      {"policy_sha256", sha256_hex(policy_json.dump())},
      {"host", host_json(climb, policy.threads)},
      {"devices", policy.devices},
      {"budget", budget_json(policy)},
      {"baseline", {{"model", climb.baseline.model.string()},
                    {"sha256", climb.baseline.sha256},
                    {"scheme", policy.baseline_scheme.empty() ? "as given" : policy.baseline_scheme},
                    {"results", "rungs/baseline/results.json"}}},
      {"rungs", rungs},
      {"recommendation", to_json(recommendation)},
      {"predictor_error", climb.predictor_error},
  };
  write_outputs(climb, staged.dir(), records, files, decision);
  staged.commit();
  spdlog::info("decide: {}", recommendation.summary);
  spdlog::info("decide: wrote {}", options.out_dir.string());

  DecideOutcome outcome;
  outcome.decision = std::move(decision);
  outcome.recommended = recommendation.rung.has_value();
  return outcome;
}

}  // namespace stepdown::decide
