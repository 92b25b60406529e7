#include "stepdown/bench/latency.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "stepdown/core/error.h"
#include "stepdown/core/thread_pool.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/transformer.h"

namespace stepdown::bench {

namespace {

using Clock = std::chrono::steady_clock;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

model::TokenId argmax(const model::Activations& logits) {
  const auto best = std::max_element(logits.data.begin(), logits.data.end());
  return static_cast<model::TokenId>(best - logits.data.begin());
}

void check_options(const model::ModelConfig& config, const LatencyOptions& options) {
  if (options.prompt_tokens < 1) raise<InvalidArgument>("bench: prompt tokens must be at least 1, got {}", options.prompt_tokens);
  if (options.decode_tokens < 1) raise<InvalidArgument>("bench: decode tokens must be at least 1, got {}", options.decode_tokens);
  if (options.repetitions < 1) raise<InvalidArgument>("bench: repetitions must be at least 1, got {}", options.repetitions);
  if (options.warmup < 0) raise<InvalidArgument>("bench: warm-up repetitions must be at least 0, got {}", options.warmup);
  const int64_t needed = options.prompt_tokens + options.decode_tokens;
  if (config.context_length > 0 && needed > config.context_length) {
    raise<InvalidArgument>("bench: {} prompt + {} decode tokens exceed the model's context length of {}; lower -p or -n",
                           options.prompt_tokens, options.decode_tokens, config.context_length);
  }
}

// Times of one repetition.
struct Repetition {
  double prefill_ms = 0.0;
  double ttft_ms = 0.0;
  std::vector<double> tpot_ms;  // D
};

Repetition run_once(model::Transformer& transformer, model::KVCache& cache, const std::vector<int32_t>& prompt,
                    int64_t decode_tokens, model::Activations& logits) {
  Repetition rep;
  cache.clear();

  const Clock::time_point start = Clock::now();
  transformer.forward(prompt, cache, logits);
  rep.prefill_ms = milliseconds_since(start);
  model::TokenId token = argmax(logits);
  rep.ttft_ms = milliseconds_since(start);

  rep.tpot_ms.reserve(static_cast<size_t>(decode_tokens));
  for (int64_t step = 0; step < decode_tokens; ++step) {
    const Clock::time_point step_start = Clock::now();
    const model::TokenId input[1] = {token};
    transformer.forward(input, cache, logits);
    token = argmax(logits);
    rep.tpot_ms.push_back(milliseconds_since(step_start));
  }
  return rep;
}

double median(const std::vector<double>& values) { return values.empty() ? 0.0 : percentile(values, 50.0); }

}  // namespace

double kv_bytes_read(const model::ModelConfig& config, int64_t context) {
  double positions = 0.0;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    const bool capped = config.is_sliding(layer) && config.sliding_window < context;
    positions += static_cast<double>(capped ? config.sliding_window : context);
  }
  // A key and a value of kv_dim floats per position (model::KVCache stores f32).
  return positions * 2.0 * static_cast<double>(config.kv_dim()) * sizeof(float);
}

std::vector<int32_t> synthetic_prompt(const model::ModelConfig& config, const LatencyOptions& options) {
  if (config.vocab_size < 1) raise<InvalidArgument>("bench: the model's vocab size is {}; expected at least 1", config.vocab_size);
  std::mt19937 generator(options.seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(config.vocab_size - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(options.prompt_tokens));
  for (int32_t& id : prompt) id = pick(generator);
  return prompt;
}

LatencyReport measure_latency(const model::ModelWeights& weights, const LatencyOptions& options,
                              const LatencyProgress& progress) {
  const model::ModelConfig& config = weights.config;
  check_options(config, options);
  LatencyReport report;
  report.options = options;
  report.host = read_host_info();

  ThreadPool pool(options.threads);
  report.threads = pool.size();
  model::Transformer transformer(weights, pool);
  transformer.set_activation_precision(options.activations);
  model::KVCache cache(config, options.prompt_tokens + options.decode_tokens);
  model::Activations logits;
  const std::vector<int32_t> prompt = synthetic_prompt(config, options);

  const int total = options.warmup + options.repetitions;
  for (int index = 0; index < total; ++index) {
    Repetition rep = run_once(transformer, cache, prompt, options.decode_tokens, logits);
    if (index >= options.warmup) {
      double decode_ms = 0.0;
      for (double ms : rep.tpot_ms) decode_ms += ms;
      report.ttft_ms.push_back(rep.ttft_ms);
      report.prefill_tokens_per_second.push_back(static_cast<double>(options.prompt_tokens) / (rep.prefill_ms / 1e3));
      report.decode_tokens_per_second.push_back(static_cast<double>(options.decode_tokens) / (decode_ms / 1e3));
      report.tpot_ms.insert(report.tpot_ms.end(), rep.tpot_ms.begin(), rep.tpot_ms.end());
    }
    if (progress) progress(index + 1, total);
  }

  report.ttft = summarize(report.ttft_ms);
  report.tpot = summarize(report.tpot_ms);
  report.prefill_tps = median(report.prefill_tokens_per_second);
  report.decode_tps = median(report.decode_tokens_per_second);

  // Decode step s (0-based) attends over positions [0, P + s], so P + s + 1 of them.
  report.weight_bytes_per_token = weights.decode_bytes_per_token();
  double kv_total = 0.0;
  double context_total = 0.0;
  for (int64_t step = 0; step < options.decode_tokens; ++step) {
    const int64_t context = options.prompt_tokens + step + 1;
    kv_total += kv_bytes_read(config, context);
    context_total += static_cast<double>(context);
  }
  report.kv_bytes_per_token = kv_total / static_cast<double>(options.decode_tokens);
  report.mean_decode_context = context_total / static_cast<double>(options.decode_tokens);

  // Read before the probe, whose buffer would otherwise dominate the peak.
  report.peak_rss_bytes = peak_rss_bytes();

  // The probe runs after decode, so its buffer does not evict the weights before timing.
  if (options.measure_bandwidth) {
    BandwidthOptions bandwidth = options.bandwidth;
    bandwidth.threads = report.threads;
    report.bandwidth = measure_read_bandwidth(bandwidth);
    report.decode_efficiency = report.bytes_per_token() * report.decode_tps / (report.bandwidth.gb_per_s * 1e9);
  }
  return report;
}

}  // namespace stepdown::bench
