#include "stepdown/bench/latency_report.h"

#include <fmt/format.h>

namespace stepdown::bench {

namespace {

nlohmann::json summary_json(const Summary& s) {
  return {{"count", s.count}, {"min", s.min}, {"p50", s.p50}, {"p95", s.p95},
          {"p99", s.p99},     {"max", s.max}, {"mean", s.mean}};
}

std::string join(const std::vector<std::string>& words) {
  std::string joined;
  for (const std::string& word : words) joined += (joined.empty() ? "" : " ") + word;
  return joined.empty() ? "none" : joined;
}

}  // namespace

nlohmann::json to_json(const LatencyReport& r) {
  const LatencyOptions& o = r.options;
  nlohmann::json json;
  json["options"] = {{"prompt_tokens", o.prompt_tokens}, {"decode_tokens", o.decode_tokens},
                     {"repetitions", o.repetitions},     {"warmup", o.warmup},
                     {"seed", o.seed}};
  json["host"] = {{"cpu_model", r.host.cpu_model},
                  {"hardware_threads", r.host.hardware_threads},
                  {"cpu_features", r.host.cpu_features},
                  {"openblas_coretype", r.host.openblas_coretype}};
  json["threads"] = r.threads;
  json["percentile_definition"] = "nearest rank: the ceil(p/100*n)-th smallest sample";
  json["ttft_ms"] = summary_json(r.ttft);
  json["tpot_ms"] = summary_json(r.tpot);
  json["prefill_tokens_per_second"] = r.prefill_tps;
  json["decode_tokens_per_second"] = r.decode_tps;
  json["repetitions"] = {{"ttft_ms", r.ttft_ms},
                         {"prefill_tokens_per_second", r.prefill_tokens_per_second},
                         {"decode_tokens_per_second", r.decode_tokens_per_second}};
  json["tpot_samples_ms"] = r.tpot_ms;
  json["weight_bytes_per_token"] = r.weight_bytes_per_token;
  json["kv_bytes_per_token"] = r.kv_bytes_per_token;
  json["mean_decode_context"] = r.mean_decode_context;
  json["bytes_per_token"] = r.bytes_per_token();
  json["bandwidth"] = {{"gb_per_s", r.bandwidth.gb_per_s},
                       {"median_gb_per_s", r.bandwidth.median_gb_per_s},
                       {"buffer_bytes", r.bandwidth.buffer_bytes},
                       {"threads", r.bandwidth.threads},
                       {"runs", r.bandwidth.runs}};
  json["decode_efficiency"] = r.decode_efficiency;
  json["peak_rss_bytes"] = r.peak_rss_bytes;
  return json;
}

std::string format_table(const LatencyReport& r) {
  const LatencyOptions& o = r.options;
  std::string out;
  out += fmt::format("cpu          {} ({} hardware threads)\n", r.host.cpu_model.empty() ? "unknown" : r.host.cpu_model,
                     r.host.hardware_threads);
  out += fmt::format("features     {}\n", join(r.host.cpu_features));
  out += fmt::format("threads      {} | OPENBLAS_CORETYPE={}\n", r.threads, r.host.openblas_coretype);
  out += fmt::format("runs         {} timed after {} warm-up; percentiles by nearest rank\n", o.repetitions, o.warmup);
  out += "\n";
  out += fmt::format("{:<10} {:>12}\n", "test", "tokens/s");
  out += fmt::format("{:<10} {:>12.2f}\n", fmt::format("pp{}", o.prompt_tokens), r.prefill_tps);
  out += fmt::format("{:<10} {:>12.2f}\n", fmt::format("tg{}", o.decode_tokens), r.decode_tps);
  out += "\n";
  out += fmt::format("{:<10} {:>6} {:>10} {:>10} {:>10} {:>10}\n", "ms", "n", "p50", "p95", "p99", "max");
  for (const auto& [name, s] : {std::pair{"TTFT", r.ttft}, std::pair{"TPOT", r.tpot}}) {
    out += fmt::format("{:<10} {:>6} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f}\n", name, s.count, s.p50, s.p95, s.p99,
                       s.max);
  }
  out += "\n";
  out += fmt::format("bytes/token  {:.2f} MB weights + {:.2f} MB KV cache at mean context {:.1f}\n",
                     static_cast<double>(r.weight_bytes_per_token) / 1e6, r.kv_bytes_per_token / 1e6,
                     r.mean_decode_context);
  if (r.bandwidth.runs > 0) {
    out += fmt::format("bandwidth    {:.2f} GB/s best, {:.2f} GB/s median ({} threads, {} MiB, {} runs)\n",
                       r.bandwidth.gb_per_s, r.bandwidth.median_gb_per_s, r.bandwidth.threads,
                       r.bandwidth.buffer_bytes >> 20, r.bandwidth.runs);
    out += fmt::format("efficiency   {:.1f}% of the read bandwidth during decode\n", 100.0 * r.decode_efficiency);
    // Weights that fit in the cache are read from it, not from DRAM, so the roofline is too low.
    const size_t cache_bytes = last_level_cache_bytes();
    if (cache_bytes > 0 && r.bytes_per_token() < static_cast<double>(cache_bytes)) {
      out += fmt::format("             (bytes per token fit in the {} MiB last-level cache, so efficiency can exceed 100%)\n",
                         cache_bytes >> 20);
    }
  } else {
    out += "bandwidth    not measured\n";
  }
  out += fmt::format("peak RSS     {:.1f} MiB\n", static_cast<double>(r.peak_rss_bytes) / (1 << 20));
  return out;
}

}  // namespace stepdown::bench
