// The latency library on stories260K with tiny sizes: the report's structure and
// invariants (counts, ordered percentiles, byte counts, the efficiency formula), never
// its timings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "stepdown/bench/latency.h"
#include "stepdown/bench/latency_report.h"
#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "test_paths.h"

namespace stepdown::bench {
namespace {

model::ModelWeights load_stories() {
  const std::filesystem::path dir = test::shared_dir() / "models" / "stories260K";
  io::OpenOptions open_options;
  open_options.tokenizer_path = dir / "tok512.bin";
  return model::load_weights(io::open_model_file(dir / "stories260K.bin", open_options));
}

LatencyOptions tiny_options() {
  LatencyOptions options;
  options.prompt_tokens = 8;
  options.decode_tokens = 5;
  options.repetitions = 3;
  options.warmup = 1;
  options.threads = 2;
  options.bandwidth.buffer_bytes = 4 << 20;
  options.bandwidth.runs = 2;
  return options;
}

void expect_ordered(const Summary& s) {
  EXPECT_LE(s.min, s.p50);
  EXPECT_LE(s.p50, s.p95);
  EXPECT_LE(s.p95, s.p99);
  EXPECT_LE(s.p99, s.max);
  EXPECT_GE(s.mean, s.min);
  EXPECT_LE(s.mean, s.max);
  EXPECT_GT(s.min, 0.0);
}

TEST(Percentile, NearestRankOnOneToTen) {
  const std::vector<double> samples = {7, 3, 10, 1, 5, 2, 9, 4, 8, 6};
  EXPECT_EQ(percentile(samples, 10.0), 1.0);
  EXPECT_EQ(percentile(samples, 50.0), 5.0);
  EXPECT_EQ(percentile(samples, 51.0), 6.0);
  EXPECT_EQ(percentile(samples, 95.0), 10.0);
  EXPECT_EQ(percentile(samples, 100.0), 10.0);
}

TEST(Percentile, NearestRankOnOneToHundred) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i);
  EXPECT_EQ(percentile(samples, 50.0), 50.0);
  EXPECT_EQ(percentile(samples, 95.0), 95.0);
  EXPECT_EQ(percentile(samples, 99.0), 99.0);
  const Summary s = summarize(samples);
  EXPECT_EQ(s.count, 100);
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.p99, 99.0);
  EXPECT_EQ(s.max, 100.0);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
}

TEST(Percentile, SingleSampleIsEveryPercentile) {
  const std::vector<double> samples = {4.5};
  const Summary s = summarize(samples);
  EXPECT_EQ(s.p50, 4.5);
  EXPECT_EQ(s.p99, 4.5);
}

TEST(Percentile, RejectsEmptyAndOutOfRange) {
  const std::vector<double> samples = {1.0, 2.0};
  EXPECT_THROW(percentile({}, 50.0), InvalidArgument);
  EXPECT_THROW(percentile(samples, 0.0), InvalidArgument);
  EXPECT_THROW(percentile(samples, 100.5), InvalidArgument);
  EXPECT_EQ(summarize({}).count, 0);
}

TEST(SyntheticPrompt, ValidDeterministicIds) {
  const model::ModelWeights weights = load_stories();
  LatencyOptions options = tiny_options();
  options.prompt_tokens = 300;
  const std::vector<int32_t> first = synthetic_prompt(weights.config, options);
  ASSERT_EQ(first.size(), 300u);
  for (int32_t id : first) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, weights.config.vocab_size);
  }
  EXPECT_EQ(first, synthetic_prompt(weights.config, options));
  options.seed += 1;
  EXPECT_NE(first, synthetic_prompt(weights.config, options));
}

TEST(KvBytesRead, KeysAndValuesOfEveryBlock) {
  model::ModelConfig config;
  config.n_layers = 4;
  config.n_heads = 4;
  config.n_kv_heads = 2;
  config.head_dim = 8;
  // 4 blocks * 2 (key, value) * 16 floats * 4 bytes per position.
  EXPECT_DOUBLE_EQ(kv_bytes_read(config, 10), 10.0 * 4 * 2 * 16 * 4);

  // Sliding window 3, every second block global: blocks 0 and 2 read 3 positions.
  config.sliding_window = 3;
  config.sliding_window_pattern = 2;
  EXPECT_DOUBLE_EQ(kv_bytes_read(config, 10), (3.0 + 10 + 3 + 10) * 2 * 16 * 4);
  EXPECT_DOUBLE_EQ(kv_bytes_read(config, 2), (2.0 + 2 + 2 + 2) * 2 * 16 * 4);
}

TEST(MeasureLatency, ReportStructureOnStories) {
  ::setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  const model::ModelWeights weights = load_stories();
  const LatencyOptions options = tiny_options();
  std::vector<int> progress;
  const LatencyReport r = measure_latency(weights, options, [&](int done, int total) {
    EXPECT_EQ(total, 4);
    progress.push_back(done);
  });
  ::unsetenv("OPENBLAS_CORETYPE");

  EXPECT_EQ(progress, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(r.threads, 2);
  EXPECT_EQ(r.host.openblas_coretype, "Haswell");

  // One TTFT and one rate pair per timed repetition; one TPOT per decode step.
  EXPECT_EQ(r.ttft_ms.size(), 3u);
  EXPECT_EQ(r.prefill_tokens_per_second.size(), 3u);
  EXPECT_EQ(r.decode_tokens_per_second.size(), 3u);
  EXPECT_EQ(r.tpot_ms.size(), 15u);
  EXPECT_EQ(r.ttft.count, 3);
  EXPECT_EQ(r.tpot.count, 15);
  expect_ordered(r.ttft);
  expect_ordered(r.tpot);
  EXPECT_EQ(r.ttft.p50, percentile(r.ttft_ms, 50.0));
  EXPECT_EQ(r.tpot.p99, percentile(r.tpot_ms, 99.0));
  EXPECT_EQ(r.prefill_tps, percentile(r.prefill_tokens_per_second, 50.0));
  EXPECT_EQ(r.decode_tps, percentile(r.decode_tokens_per_second, 50.0));

  // Each repetition's decode rate is D over the sum of its own TPOTs.
  for (size_t rep = 0; rep < 3; ++rep) {
    double sum_ms = 0.0;
    for (size_t step = 0; step < 5; ++step) sum_ms += r.tpot_ms[rep * 5 + step];
    EXPECT_NEAR(r.decode_tokens_per_second[rep], 5.0 / (sum_ms / 1e3), 1e-9 * r.decode_tokens_per_second[rep]);
    // TTFT covers the prefill forward pass, so it is at least the prefill time.
    EXPECT_GE(r.ttft_ms[rep] / 1e3, 8.0 / r.prefill_tokens_per_second[rep]);
  }

  // Decode steps attend over P + 1 ... P + D positions: mean P + (D + 1) / 2.
  EXPECT_DOUBLE_EQ(r.mean_decode_context, 8.0 + 3.0);
  EXPECT_EQ(r.weight_bytes_per_token, weights.decode_bytes_per_token());
  EXPECT_GT(r.weight_bytes_per_token, 0u);
  // No sliding window in stories260K, so the mean of the per-step KV reads is the read at
  // the mean context.
  EXPECT_NEAR(r.kv_bytes_per_token, kv_bytes_read(weights.config, 11), 1e-6);
  EXPECT_DOUBLE_EQ(r.bytes_per_token(), static_cast<double>(r.weight_bytes_per_token) + r.kv_bytes_per_token);

  EXPECT_EQ(r.bandwidth.runs, 2);
  EXPECT_EQ(r.bandwidth.threads, 2);
  EXPECT_GT(r.bandwidth.gb_per_s, 0.0);
  EXPECT_DOUBLE_EQ(r.decode_efficiency, r.bytes_per_token() * r.decode_tps / (r.bandwidth.gb_per_s * 1e9));
  EXPECT_GT(r.peak_rss_bytes, 0u);
}

TEST(MeasureLatency, WithoutProbeEfficiencyIsZero) {
  const model::ModelWeights weights = load_stories();
  LatencyOptions options = tiny_options();
  options.measure_bandwidth = false;
  options.warmup = 0;
  options.repetitions = 1;
  const LatencyReport r = measure_latency(weights, options);
  EXPECT_EQ(r.bandwidth.runs, 0);
  EXPECT_EQ(r.decode_efficiency, 0.0);
  EXPECT_EQ(r.tpot_ms.size(), 5u);
}

TEST(MeasureLatency, RejectsBadCounts) {
  const model::ModelWeights weights = load_stories();
  LatencyOptions options = tiny_options();
  options.measure_bandwidth = false;
  for (auto change : {+[](LatencyOptions& o) { o.prompt_tokens = 0; }, +[](LatencyOptions& o) { o.decode_tokens = 0; },
                      +[](LatencyOptions& o) { o.repetitions = 0; }, +[](LatencyOptions& o) { o.warmup = -1; },
                      +[](LatencyOptions& o) { o.prompt_tokens = 1 << 20; }}) {
    LatencyOptions bad = options;
    change(bad);
    EXPECT_THROW(measure_latency(weights, bad), InvalidArgument);
  }
}

TEST(LatencyReportJson, CarriesEveryFigure) {
  const model::ModelWeights weights = load_stories();
  const LatencyReport r = measure_latency(weights, tiny_options());
  const nlohmann::json json = to_json(r);
  EXPECT_EQ(json["options"]["prompt_tokens"], 8);
  EXPECT_EQ(json["options"]["decode_tokens"], 5);
  EXPECT_EQ(json["threads"], 2);
  EXPECT_EQ(json["ttft_ms"]["count"], 3);
  EXPECT_EQ(json["tpot_ms"]["p95"].get<double>(), r.tpot.p95);
  EXPECT_EQ(json["tpot_samples_ms"].size(), 15u);
  EXPECT_EQ(json["decode_tokens_per_second"].get<double>(), r.decode_tps);
  EXPECT_EQ(json["bytes_per_token"].get<double>(), r.bytes_per_token());
  EXPECT_EQ(json["decode_efficiency"].get<double>(), r.decode_efficiency);
  EXPECT_EQ(json["bandwidth"]["gb_per_s"].get<double>(), r.bandwidth.gb_per_s);
  EXPECT_TRUE(json["host"]["cpu_features"].is_array());
  EXPECT_TRUE(json["host"]["openblas_coretype"].is_string());
  EXPECT_EQ(json["peak_rss_bytes"].get<size_t>(), r.peak_rss_bytes);

  const std::string table = format_table(r);
  EXPECT_NE(table.find("pp8"), std::string::npos);
  EXPECT_NE(table.find("tg5"), std::string::npos);
  EXPECT_NE(table.find("TPOT"), std::string::npos);
  EXPECT_NE(table.find("efficiency"), std::string::npos);
}

TEST(HostInfo, FeaturesInTrackedOrder) {
  const HostInfo info = read_host_info();
  EXPECT_GT(info.hardware_threads, 0);
  const std::vector<std::string>& tracked = tracked_cpu_features();
  size_t next = 0;
  for (const std::string& feature : info.cpu_features) {
    const auto found = std::find(tracked.begin() + static_cast<std::ptrdiff_t>(next), tracked.end(), feature);
    ASSERT_NE(found, tracked.end()) << feature;
    next = static_cast<size_t>(found - tracked.begin()) + 1;
  }
}

}  // namespace
}  // namespace stepdown::bench
