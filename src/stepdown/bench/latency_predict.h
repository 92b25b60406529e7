#pragma once
// Latency of a model on a device it has not run on: a roofline calibrated on this host.
//
// Decode (one token):   TPOT = bytes / (bandwidth x e_bw) + flops / (peak x e_compute)
// Prefill (P tokens):   TTFT = max(P x prefill flops / (peak x e_compute), weight bytes / (bandwidth x e_bw))
// Request:              e2e  = TTFT + (output_tokens - 1) x TPOT + network round trip
//
// The efficiencies e_bw and e_compute are the fractions of the peaks that a measured run on
// this host reached (calibrate_efficiency). The same fractions are applied to the target's
// peaks.
//
// Decode adds the two terms rather than taking their max. A CPU issues the loads and the
// arithmetic from the same cores, and stepdown's kernels decode each weight block right
// after loading it, so the two times add up more than they overlap. On a device where one
// term dominates, as bandwidth does for decode on a GPU, the sum and the max differ by the
// small term only. Where both are equal, the sum is at most 2x the max.
#include <cstdint>
#include <map>
#include <string>

#include "stepdown/bench/device_profile.h"
#include "stepdown/model/weights.h"

namespace stepdown::bench {

struct ModelCost {
  double weight_bytes_per_token = 0;  // weight bytes one decode step reads
  double kv_bytes_per_token = 0;      // KV cache bytes one decode step reads, at the mean decode context
  double flops_per_token = 0;         // one decode step: 2 x matrix params + attention at the mean context
  std::string compute_precision;      // key of DeviceProfile::peak_tflops: "f32", "bf16", "int8", ...
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  // Flops per prompt token in prefill (attention at the mean prompt position); 0 uses
  // flops_per_token.
  double prefill_flops_per_token = 0;
  // Bytes resident in memory: all weights (embedding included) plus the KV cache at the
  // full context. 0 uses weight_bytes_per_token.
  double resident_bytes = 0;
};

struct Efficiency {
  double bandwidth = 0;  // fraction of the read bandwidth that decode reaches
  double compute = 0;    // fraction of peak compute that prefill reaches
  // Bandwidth efficiency per compute precision, in place of `bandwidth` for the precisions
  // it lists. with_host_format_bandwidth fills it for predictions on this host.
  std::map<std::string, double> bandwidth_by_precision;
};

struct LatencyPrediction {
  double ttft_ms = 0;
  double tpot_ms = 0;
  double e2e_ms = 0;
  bool fits_memory = false;  // resident bytes <= the device's memory
  std::string compute_precision;  // the peak_tflops key used, after any fallback
};

// The compute precision a device runs `requested` at: the key itself when the device lists
// it, else the fastest listed of f16, bf16 and f32 (weights upcast), else "" when the
// device lists none of them.
std::string effective_precision(const DeviceProfile& device, const std::string& requested);

// Predicts TTFT, TPOT and e2e on `device`. Throws InvalidArgument when an efficiency is not
// positive, the device has no peak for the precision or its fallbacks, or a count or byte
// figure is negative.
LatencyPrediction predict_latency(const DeviceProfile& device, const ModelCost& cost, const Efficiency& efficiency);

// Solves the roofline for the efficiencies that reproduce a measured run on `host`: the
// compute efficiency from TTFT, then the bandwidth efficiency from what TPOT leaves after
// the compute term. Throws InvalidArgument for non-positive times or a host without a
// peak for the precision. When the compute term alone exceeds the measured TPOT, the
// bandwidth efficiency is set from the whole TPOT and a warning is logged.
Efficiency calibrate_efficiency(const DeviceProfile& host, const ModelCost& cost, double measured_ttft_ms,
                                double measured_tpot_ms);

// Spreads a bandwidth efficiency calibrated at `calibrated_precision` over every precision
// of `streaming_gb_per_s` (measure_host_streaming), in proportion to how fast this host's
// kernel for each format streams weights. Use the result for predictions on this host
// only, because the ratios are properties of stepdown's CPU kernels. Throws
// InvalidArgument when the calibrated precision has no positive streaming rate.
Efficiency with_host_format_bandwidth(const Efficiency& calibrated, const std::string& calibrated_precision,
                                      const std::map<std::string, double>& streaming_gb_per_s);

// Counts the cost of `weights` for a request of `prompt_tokens` and `output_tokens`. Weight
// bytes come from the stored formats (model::ModelWeights::decode_bytes_per_token), and KV
// cache bytes are averaged over the decode steps as bench::measure_latency counts them.
// Flops are 2 x params of every multiplied matrix plus, per block, 4 x q_dim x context for
// attention (scores and the weighted sum of values).
ModelCost model_cost(const model::ModelWeights& weights, int64_t prompt_tokens, int64_t output_tokens,
                     std::string compute_precision);

}  // namespace stepdown::bench
