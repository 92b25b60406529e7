// The calibrated roofline on constructed numbers, and model_cost on stories260K.
#include <gtest/gtest.h>

#include "stepdown/bench/latency.h"
#include "stepdown/bench/latency_predict.h"
#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "test_paths.h"

namespace stepdown::bench {
namespace {

// 100 GB/s, 10 TFLOPS f16 and 20 TOPS int8, 8 GB.
DeviceProfile test_device() {
  DeviceProfile device;
  device.name = "test-device";
  device.read_bandwidth_gbps = 100.0;
  device.memory_gb = 8.0;
  device.peak_tflops = {{"f16", 10.0}, {"int8", 20.0}};
  return device;
}

// 1 GB of weights per token, 2 GFLOP per token, 100 prompt and 11 output tokens.
ModelCost test_cost() {
  ModelCost cost;
  cost.weight_bytes_per_token = 1e9;
  cost.kv_bytes_per_token = 0.0;
  cost.flops_per_token = 2e9;
  cost.compute_precision = "f16";
  cost.prompt_tokens = 100;
  cost.output_tokens = 11;
  return cost;
}

TEST(PredictLatency, RooflineOnConstructedNumbers) {
  const Efficiency efficiency{0.5, 0.25};
  const LatencyPrediction p = predict_latency(test_device(), test_cost(), efficiency);
  // Decode: 1e9 B / (100e9 B/s x 0.5) = 20 ms, plus 2e9 / (10e12 x 0.25) = 0.8 ms.
  EXPECT_NEAR(p.tpot_ms, 20.8, 1e-9);
  // Prefill: 100 x 2e9 / 2.5e12 = 80 ms, above the 20 ms weight-read floor.
  EXPECT_NEAR(p.ttft_ms, 80.0, 1e-9);
  EXPECT_NEAR(p.e2e_ms, 80.0 + 10 * 20.8, 1e-9);
  EXPECT_TRUE(p.fits_memory);
  EXPECT_EQ(p.compute_precision, "f16");
}

TEST(PredictLatency, KvBytesAddToDecode) {
  ModelCost cost = test_cost();
  cost.kv_bytes_per_token = 0.5e9;
  const LatencyPrediction p = predict_latency(test_device(), cost, Efficiency{0.5, 0.25});
  EXPECT_NEAR(p.tpot_ms, 30.8, 1e-9);
}

TEST(PredictLatency, PrefillHasBandwidthFloor) {
  ModelCost cost = test_cost();
  cost.prompt_tokens = 1;
  const LatencyPrediction p = predict_latency(test_device(), cost, Efficiency{0.5, 0.25});
  // Compute would take 0.8 ms, but the weights take 20 ms to read once.
  EXPECT_NEAR(p.ttft_ms, 20.0, 1e-9);
}

TEST(PredictLatency, NetworkRoundTripAddsToE2e) {
  DeviceProfile device = test_device();
  device.network_rtt_ms = 25.0;
  const LatencyPrediction local = predict_latency(test_device(), test_cost(), Efficiency{0.5, 0.25});
  const LatencyPrediction remote = predict_latency(device, test_cost(), Efficiency{0.5, 0.25});
  EXPECT_NEAR(remote.e2e_ms - local.e2e_ms, 25.0, 1e-9);
  EXPECT_DOUBLE_EQ(remote.tpot_ms, local.tpot_ms);
}

TEST(PredictLatency, PrecisionPicksPeak) {
  ModelCost cost = test_cost();
  cost.compute_precision = "int8";
  const LatencyPrediction p = predict_latency(test_device(), cost, Efficiency{0.5, 0.25});
  EXPECT_NEAR(p.tpot_ms, 20.4, 1e-9);
  EXPECT_NEAR(p.ttft_ms, 40.0, 1e-9);
}

TEST(PredictLatency, MissingPrecisionFallsBackToFloat) {
  ModelCost cost = test_cost();
  cost.compute_precision = "fp8";
  const LatencyPrediction p = predict_latency(test_device(), cost, Efficiency{0.5, 0.25});
  EXPECT_EQ(p.compute_precision, "f16");
  EXPECT_NEAR(p.tpot_ms, 20.8, 1e-9);

  DeviceProfile integer_only = test_device();
  integer_only.peak_tflops = {{"int8", 20.0}};
  EXPECT_EQ(effective_precision(integer_only, "fp8"), "");
  EXPECT_THROW(predict_latency(integer_only, cost, Efficiency{0.5, 0.25}), InvalidArgument);
}

TEST(PredictLatency, MemoryFit) {
  ModelCost cost = test_cost();
  cost.resident_bytes = 9e9;
  EXPECT_FALSE(predict_latency(test_device(), cost, Efficiency{0.5, 0.25}).fits_memory);
  cost.resident_bytes = 7e9;
  EXPECT_TRUE(predict_latency(test_device(), cost, Efficiency{0.5, 0.25}).fits_memory);
}

TEST(PredictLatency, RejectsBadInput) {
  EXPECT_THROW(predict_latency(test_device(), test_cost(), Efficiency{0.0, 0.25}), InvalidArgument);
  EXPECT_THROW(predict_latency(test_device(), test_cost(), Efficiency{0.5, -1.0}), InvalidArgument);
  ModelCost cost = test_cost();
  cost.output_tokens = 0;
  EXPECT_THROW(predict_latency(test_device(), cost, Efficiency{0.5, 0.25}), InvalidArgument);
  cost = test_cost();
  cost.kv_bytes_per_token = -1.0;
  EXPECT_THROW(predict_latency(test_device(), cost, Efficiency{0.5, 0.25}), InvalidArgument);
}

TEST(CalibrateEfficiency, RecoversEfficienciesOfPrediction) {
  const DeviceProfile device = test_device();
  const Efficiency truth{0.37, 0.12};
  const LatencyPrediction p = predict_latency(device, test_cost(), truth);
  const Efficiency solved = calibrate_efficiency(device, test_cost(), p.ttft_ms, p.tpot_ms);
  EXPECT_NEAR(solved.bandwidth, truth.bandwidth, 1e-9);
  EXPECT_NEAR(solved.compute, truth.compute, 1e-9);
}

TEST(CalibrateEfficiency, ComputeAboveTpotUsesWholeTpot) {
  // TTFT 1000 ms gives compute efficiency 0.02, so the compute term alone is 10 ms > 5 ms.
  const Efficiency e = calibrate_efficiency(test_device(), test_cost(), 1000.0, 5.0);
  EXPECT_NEAR(e.compute, 0.02, 1e-12);
  EXPECT_NEAR(e.bandwidth, 1e9 / (100e9 * 5e-3), 1e-9);
}

TEST(HostFormatBandwidth, ScalesByStreamingRate) {
  const Efficiency calibrated{0.6, 0.3};
  const Efficiency spread = with_host_format_bandwidth(calibrated, "f16", {{"f16", 4.0}, {"int8", 2.0}, {"int4", 0.0}});
  EXPECT_DOUBLE_EQ(spread.bandwidth_by_precision.at("f16"), 0.6);
  EXPECT_DOUBLE_EQ(spread.bandwidth_by_precision.at("int8"), 0.3);
  EXPECT_FALSE(spread.bandwidth_by_precision.count("int4"));
  EXPECT_DOUBLE_EQ(spread.compute, 0.3);
  EXPECT_THROW(with_host_format_bandwidth(calibrated, "bf16", {{"f16", 4.0}}), InvalidArgument);
}

TEST(HostFormatBandwidth, PredictionUsesPrecisionEntry) {
  Efficiency efficiency{0.5, 0.25};
  efficiency.bandwidth_by_precision["int8"] = 0.25;
  ModelCost cost = test_cost();
  cost.compute_precision = "int8";
  // 1e9 B / (100e9 x 0.25) = 40 ms, plus 2e9 / (20e12 x 0.25) = 0.4 ms.
  EXPECT_NEAR(predict_latency(test_device(), cost, efficiency).tpot_ms, 40.4, 1e-9);
  // f16 has no entry, so it keeps the calibrated 0.5.
  EXPECT_NEAR(predict_latency(test_device(), test_cost(), efficiency).tpot_ms, 20.8, 1e-9);
}

TEST(CalibrateEfficiency, RejectsNonPositiveTimes) {
  EXPECT_THROW(calibrate_efficiency(test_device(), test_cost(), 0.0, 5.0), InvalidArgument);
  EXPECT_THROW(calibrate_efficiency(test_device(), test_cost(), 10.0, -1.0), InvalidArgument);
}

model::ModelWeights load_stories() {
  const std::filesystem::path dir = test::shared_dir() / "models" / "stories260K";
  io::OpenOptions open_options;
  open_options.tokenizer_path = dir / "tok512.bin";
  return model::load_weights(io::open_model_file(dir / "stories260K.bin", open_options));
}

TEST(ModelCost, Stories260kCountsMatchConfig) {
  const model::ModelWeights weights = load_stories();
  const model::ModelConfig& c = weights.config;
  const ModelCost cost = model_cost(weights, 8, 4, "f32");

  EXPECT_DOUBLE_EQ(cost.weight_bytes_per_token, static_cast<double>(weights.decode_bytes_per_token()));
  // Matrix params per token: q, k, v, o, gate, up, down per block and the output matrix.
  const double block_params = static_cast<double>(c.q_dim() * c.dim + 2 * c.kv_dim() * c.dim + c.dim * c.q_dim() +
                                                  3 * c.ffn_dim * c.dim);
  const double matrix_params = static_cast<double>(c.n_layers) * block_params + static_cast<double>(c.vocab_size * c.dim);
  // f32 weights: 4 bytes per param.
  EXPECT_DOUBLE_EQ(cost.weight_bytes_per_token, 4.0 * matrix_params);
  // Decode steps attend over 9, 10, 11, 12 positions: mean 10.5.
  const double attention = 4.0 * static_cast<double>(c.q_dim()) * 10.5 * static_cast<double>(c.n_layers);
  EXPECT_NEAR(cost.flops_per_token, 2.0 * matrix_params + attention, 1e-6);
  // Prompt tokens attend over 1..8 positions: mean 4.5.
  const double prefill_attention = 4.0 * static_cast<double>(c.q_dim()) * 4.5 * static_cast<double>(c.n_layers);
  EXPECT_NEAR(cost.prefill_flops_per_token, 2.0 * matrix_params + prefill_attention, 1e-6);
  EXPECT_EQ(cost.prompt_tokens, 8);
  EXPECT_EQ(cost.output_tokens, 4);
  EXPECT_EQ(cost.compute_precision, "f32");
  EXPECT_GT(cost.resident_bytes, cost.weight_bytes_per_token);
}

TEST(ModelCost, KvBytesMatchLatencyReport) {
  const model::ModelWeights weights = load_stories();
  LatencyOptions options;
  options.prompt_tokens = 8;
  options.decode_tokens = 5;
  options.repetitions = 1;
  options.warmup = 0;
  options.threads = 1;
  options.measure_bandwidth = false;
  const LatencyReport report = measure_latency(weights, options);
  const ModelCost cost = model_cost(weights, 8, 5, "f32");
  EXPECT_DOUBLE_EQ(cost.kv_bytes_per_token, report.kv_bytes_per_token);
  EXPECT_DOUBLE_EQ(cost.weight_bytes_per_token, static_cast<double>(report.weight_bytes_per_token));
}

TEST(ModelCost, RejectsBadCounts) {
  const model::ModelWeights weights = load_stories();
  EXPECT_THROW(model_cost(weights, 0, 4, "f32"), InvalidArgument);
  EXPECT_THROW(model_cost(weights, 4, 0, "f32"), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::bench
