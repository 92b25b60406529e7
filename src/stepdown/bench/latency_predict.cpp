#include "stepdown/bench/latency_predict.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "stepdown/bench/latency.h"
#include "stepdown/core/error.h"

namespace stepdown::bench {

namespace {

double peak_flops_per_second(const DeviceProfile& device, const std::string& precision) {
  return device.peak_tflops.at(precision) * 1e12;
}

double prefill_flops(const ModelCost& cost) {
  const double per_token = cost.prefill_flops_per_token > 0 ? cost.prefill_flops_per_token : cost.flops_per_token;
  return static_cast<double>(cost.prompt_tokens) * per_token;
}

void check_cost(const ModelCost& cost) {
  if (cost.prompt_tokens < 1) raise<InvalidArgument>("latency model: prompt tokens must be at least 1, got {}", cost.prompt_tokens);
  if (cost.output_tokens < 1) raise<InvalidArgument>("latency model: output tokens must be at least 1, got {}", cost.output_tokens);
  for (const auto& [name, value] : {std::pair{"weight_bytes_per_token", cost.weight_bytes_per_token},
                                    std::pair{"kv_bytes_per_token", cost.kv_bytes_per_token},
                                    std::pair{"flops_per_token", cost.flops_per_token},
                                    std::pair{"prefill_flops_per_token", cost.prefill_flops_per_token},
                                    std::pair{"resident_bytes", cost.resident_bytes}}) {
    if (!(value >= 0.0) || !std::isfinite(value)) {
      raise<InvalidArgument>("latency model: {} must be a finite number >= 0, got {}", name, value);
    }
  }
  if (cost.weight_bytes_per_token <= 0.0) raise<InvalidArgument>("latency model: weight bytes per token must be > 0");
  if (cost.flops_per_token <= 0.0) raise<InvalidArgument>("latency model: flops per token must be > 0");
}

// The precision to use on `device`, or an InvalidArgument naming what the device lists.
std::string require_precision(const DeviceProfile& device, const std::string& requested) {
  const std::string precision = effective_precision(device, requested);
  if (precision.empty()) {
    std::string listed;
    for (const auto& [key, tflops] : device.peak_tflops) listed += (listed.empty() ? "" : ", ") + key;
    raise<InvalidArgument>("device '{}': no peak compute for '{}' nor for f16, bf16 or f32 (it lists: {}); add one to "
                           "its profile's peak_tflops",
                           device.name, requested, listed.empty() ? "none" : listed);
  }
  if (device.peak_tflops.at(precision) <= 0.0) {
    raise<InvalidArgument>("device '{}': peak_tflops.{} is 0; expected a positive figure", device.name, precision);
  }
  return precision;
}

}  // namespace

std::string effective_precision(const DeviceProfile& device, const std::string& requested) {
  if (device.peak_tflops.count(requested) > 0) return requested;

  // NOTE: a device without a fast path for the weight format is assumed to upcast the
  // weights and run at its fastest float rate, which ignores the cost of the conversion.
  std::string best;
  for (const char* fallback : {"f16", "bf16", "f32"}) {
    const auto it = device.peak_tflops.find(fallback);
    if (it == device.peak_tflops.end()) continue;
    if (best.empty() || it->second > device.peak_tflops.at(best)) best = fallback;
  }
  return best;
}

LatencyPrediction predict_latency(const DeviceProfile& device, const ModelCost& cost, const Efficiency& efficiency) {
  check_cost(cost);
  if (!(efficiency.bandwidth > 0.0) || !(efficiency.compute > 0.0)) {
    raise<InvalidArgument>("latency model: efficiencies must be > 0, got bandwidth {} and compute {}; calibrate them "
                           "from a measured run first",
                           efficiency.bandwidth, efficiency.compute);
  }
  if (device.read_bandwidth_gbps <= 0.0) {
    raise<InvalidArgument>("device '{}': read bandwidth must be > 0, got {}", device.name, device.read_bandwidth_gbps);
  }
  LatencyPrediction prediction;
  prediction.compute_precision = require_precision(device, cost.compute_precision);

  // NOTE: the efficiencies were measured with stepdown's CPU kernels on this host, and
  // applying them to a GPU or NPU is an assumption. Tuned GPU runtimes reach a larger
  // fraction of their bandwidth, so decode predictions for them are likely too slow, by up
  // to the ratio of the two efficiencies (about 1.5-2x for a host efficiency of 0.5-0.7).
  const auto by_precision = efficiency.bandwidth_by_precision.find(cost.compute_precision);
  const double bandwidth_efficiency =
      by_precision != efficiency.bandwidth_by_precision.end() ? by_precision->second : efficiency.bandwidth;
  if (!(bandwidth_efficiency > 0.0)) {
    raise<InvalidArgument>("latency model: bandwidth efficiency for '{}' must be > 0, got {}", cost.compute_precision,
                           bandwidth_efficiency);
  }
  const double bytes_per_second = device.read_bandwidth_gbps * 1e9 * bandwidth_efficiency;
  const double flops_per_second = peak_flops_per_second(device, prediction.compute_precision) * efficiency.compute;

  // Decode: stream the weights and the KV cache once, plus the arithmetic.
  const double decode_memory_s = (cost.weight_bytes_per_token + cost.kv_bytes_per_token) / bytes_per_second;
  const double decode_compute_s = cost.flops_per_token / flops_per_second;
  prediction.tpot_ms = (decode_memory_s + decode_compute_s) * 1e3;

  // Prefill: one batch whose arithmetic dominates, but never faster than reading the
  // weights once.
  const double prefill_compute_s = prefill_flops(cost) / flops_per_second;
  const double prefill_memory_s = cost.weight_bytes_per_token / bytes_per_second;
  prediction.ttft_ms = std::max(prefill_compute_s, prefill_memory_s) * 1e3;

  prediction.e2e_ms = prediction.ttft_ms + static_cast<double>(cost.output_tokens - 1) * prediction.tpot_ms +
                      device.network_rtt_ms;

  const double resident = cost.resident_bytes > 0 ? cost.resident_bytes : cost.weight_bytes_per_token;
  prediction.fits_memory = resident <= device.memory_gb * 1e9;
  return prediction;
}

Efficiency calibrate_efficiency(const DeviceProfile& host, const ModelCost& cost, double measured_ttft_ms,
                                double measured_tpot_ms) {
  check_cost(cost);
  if (!(measured_ttft_ms > 0.0) || !(measured_tpot_ms > 0.0)) {
    raise<InvalidArgument>("latency model: measured TTFT and TPOT must be > 0 ms, got {} and {}", measured_ttft_ms,
                           measured_tpot_ms);
  }
  if (host.read_bandwidth_gbps <= 0.0) {
    raise<InvalidArgument>("device '{}': read bandwidth must be > 0, got {}; run the bandwidth probe", host.name,
                           host.read_bandwidth_gbps);
  }
  const std::string precision = require_precision(host, cost.compute_precision);
  const double peak = peak_flops_per_second(host, precision);
  const double bandwidth = host.read_bandwidth_gbps * 1e9;

  // Prefill is compute-bound on a CPU, so TTFT fixes the compute efficiency.
  Efficiency efficiency;
  efficiency.compute = prefill_flops(cost) / (peak * measured_ttft_ms / 1e3);

  // Decode: what the compute term leaves of TPOT is the time spent reading bytes.
  // NOTE: this efficiency is for the calibrated format only. stepdown's q4_0 kernel
  // streams far fewer bytes per second than its bf16 kernel on this project's test host,
  // so predictions for other formats on this host need with_host_format_bandwidth.
  const double decode_bytes = cost.weight_bytes_per_token + cost.kv_bytes_per_token;
  const double compute_s = cost.flops_per_token / (peak * efficiency.compute);
  double memory_s = measured_tpot_ms / 1e3 - compute_s;
  if (memory_s <= 0.0) {
    spdlog::warn("latency model: the compute term ({:.3f} ms) exceeds the measured TPOT ({:.3f} ms) on '{}'; the "
                 "bandwidth efficiency is taken from the whole TPOT",
                 compute_s * 1e3, measured_tpot_ms, host.name);
    memory_s = measured_tpot_ms / 1e3;
  }
  efficiency.bandwidth = decode_bytes / (bandwidth * memory_s);
  return efficiency;
}

Efficiency with_host_format_bandwidth(const Efficiency& calibrated, const std::string& calibrated_precision,
                                      const std::map<std::string, double>& streaming_gb_per_s) {
  const auto reference = streaming_gb_per_s.find(calibrated_precision);
  if (reference == streaming_gb_per_s.end() || !(reference->second > 0.0)) {
    raise<InvalidArgument>("latency model: no positive streaming rate for the calibrated precision '{}'; run "
                           "measure_host_streaming first",
                           calibrated_precision);
  }
  Efficiency spread = calibrated;
  for (const auto& [precision, gb_per_s] : streaming_gb_per_s) {
    if (gb_per_s > 0.0) spread.bandwidth_by_precision[precision] = calibrated.bandwidth * gb_per_s / reference->second;
  }
  return spread;
}

ModelCost model_cost(const model::ModelWeights& weights, int64_t prompt_tokens, int64_t output_tokens,
                     std::string compute_precision) {
  if (prompt_tokens < 1) raise<InvalidArgument>("model cost: prompt tokens must be at least 1, got {}", prompt_tokens);
  if (output_tokens < 1) raise<InvalidArgument>("model cost: output tokens must be at least 1, got {}", output_tokens);
  const model::ModelConfig& config = weights.config;

  // Params of every matrix one token multiplies: q, k, v, o, gate, up, down per block and
  // the output matrix (the embedding lookup reads one row and is left out).
  const auto params = [](const kernels::WeightMatrix& w) { return static_cast<double>(w.rows) * static_cast<double>(w.cols); };
  double matrix_params = params(weights.output);
  for (const model::BlockWeights& b : weights.blocks) {
    matrix_params += params(b.attn_q) + params(b.attn_k) + params(b.attn_v) + params(b.attn_output);
    matrix_params += params(b.ffn_gate) + params(b.ffn_up) + params(b.ffn_down);
  }

  // Attention of one token over `context` positions: q . k for every position and the
  // weighted sum of values, 2 flops per multiply-add each, per block (sliding blocks
  // capped at their window).
  const auto attention_flops = [&](double context) {
    double flops = 0.0;
    for (int64_t layer = 0; layer < config.n_layers; ++layer) {
      const bool capped = config.is_sliding(layer) && static_cast<double>(config.sliding_window) < context;
      const double positions = capped ? static_cast<double>(config.sliding_window) : context;
      flops += 4.0 * static_cast<double>(config.q_dim()) * positions;
    }
    return flops;
  };

  // Decode step s attends over P + s + 1 positions; average over the output tokens as
  // measure_latency does.
  double kv_total = 0.0;
  double attention_total = 0.0;
  for (int64_t step = 0; step < output_tokens; ++step) {
    const int64_t context = prompt_tokens + step + 1;
    kv_total += kv_bytes_read(config, context);
    attention_total += attention_flops(static_cast<double>(context));
  }

  ModelCost cost;
  cost.weight_bytes_per_token = static_cast<double>(weights.decode_bytes_per_token());
  cost.kv_bytes_per_token = kv_total / static_cast<double>(output_tokens);
  cost.flops_per_token = 2.0 * matrix_params + attention_total / static_cast<double>(output_tokens);
  cost.compute_precision = std::move(compute_precision);
  cost.prompt_tokens = prompt_tokens;
  cost.output_tokens = output_tokens;
  // Prompt token i attends over i + 1 positions, (P + 1) / 2 on average.
  cost.prefill_flops_per_token = 2.0 * matrix_params + attention_flops((static_cast<double>(prompt_tokens) + 1.0) / 2.0);

  // Resident: every weight matrix (the embedding table too when it is not the output
  // matrix) plus the KV cache at the full context.
  const bool tied = weights.token_embd.data == weights.output.data;
  const double embedding_bytes = tied ? 0.0 : static_cast<double>(weights.token_embd.row_stride) * static_cast<double>(weights.token_embd.rows);
  cost.resident_bytes = cost.weight_bytes_per_token + embedding_bytes + kv_bytes_read(config, prompt_tokens + output_tokens);
  return cost;
}

}  // namespace stepdown::bench
