#include "stepdown/decide/record.h"

namespace stepdown::decide {

nlohmann::json to_json(const QualityRow& row) {
  return {{"name", row.name},         {"metric", row.metric},     {"n", row.n},
          {"baseline", row.baseline}, {"candidate", row.candidate}, {"delta", row.delta},
          {"ci_low", row.ci_low},     {"ci_high", row.ci_high},   {"tolerance", row.tolerance},
          {"gated", row.gated},       {"verdict", row.verdict},   {"pass", row.pass}};
}

nlohmann::json to_json(const LatencyPrediction& prediction) {
  return {{"ttft_p95_ms", prediction.ttft_ms},
          {"tpot_p95_ms", prediction.tpot_ms},
          {"e2e_p95_ms", prediction.e2e_ms},
          {"fits_memory", prediction.fits_memory},
          {"compute_precision", prediction.compute_precision}};
}

nlohmann::json to_json(const RungRecord& record) {
  nlohmann::json json;
  json["name"] = record.name;
  json["label"] = record.label;
  json["rung_index"] = record.rung_index;
  json["status"] = record.status;
  json["method"] = record.method;
  json["scheme"] = record.scheme;
  json["params"] = record.params;
  json["model_file"] = record.model_file.empty() ? nlohmann::json(nullptr) : nlohmann::json(record.model_file);
  json["file_bytes"] = record.file_bytes;
  json["bits_per_weight"] = record.bits_per_weight;
  json["weight_bytes_per_token"] = record.weight_bytes_per_token;
  json["kv_bytes_per_token"] = record.kv_bytes_per_token;
  json["flops_per_token"] = record.flops_per_token;
  json["prefill_flops_per_token"] = record.prefill_flops_per_token;
  json["resident_bytes"] = record.resident_bytes;
  json["compute_precision"] = record.compute_precision;

  if (record.measured) {
    const MeasuredLatency& m = *record.measured;
    json["measured"] = {{"device", m.device},           {"ttft_p50_ms", m.ttft_p50_ms},
                        {"ttft_p95_ms", m.ttft_p95_ms}, {"tpot_p50_ms", m.tpot_p50_ms},
                        {"tpot_p95_ms", m.tpot_p95_ms}, {"pp_tokens_per_s", m.pp_tokens_per_s},
                        {"tg_tokens_per_s", m.tg_tokens_per_s}, {"peak_rss_mb", m.peak_rss_mb}};
  } else {
    json["measured"] = nullptr;
  }
  json["predicted"] = nlohmann::json::object();
  for (const auto& [device, prediction] : record.predicted) json["predicted"][device] = to_json(prediction);

  if (record.overall) {
    nlohmann::json strata = nlohmann::json::array();
    for (const QualityRow& row : record.strata) strata.push_back(to_json(row));
    // NOTE: KL divergence against the baseline is not computed by decide yet, so "kld" is null.
    json["quality"] = {{"overall", to_json(*record.overall)}, {"strata", strata}, {"kld", nullptr}};
  } else {
    json["quality"] = nullptr;
  }
  json["meets_budget"] = record.meets_budget;
  json["meets_quality"] = record.meets_quality;
  json["reasons"] = record.reasons;
  json["seconds"] = record.seconds;
  json["reused"] = record.reused;
  json["results"] = record.results_file.empty() ? nlohmann::json(nullptr) : nlohmann::json(record.results_file);
  return json;
}

}  // namespace stepdown::decide
