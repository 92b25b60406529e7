#pragma once
// Latency of a local model as a user feels it: time to first token (TTFT) after a prompt,
// time per output token (TPOT) after that, prefill and decode throughput, and how close
// decode comes to the memory-bandwidth roofline.
//
// One repetition = reset the KV cache, prefill P synthetic prompt tokens in one batch,
// take the greedy (argmax) first token, then D single-token decode steps, each feeding
// back the previous argmax. Defaults P = 512, D = 128 match llama.cpp's pp512 and tg128.
//
// NOTE: this drives model::Transformer directly and not engine::Engine. The Engine
// interface takes text and reports only TTFT and total time, but a benchmark needs exact
// token counts and the time of every step.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stepdown/bench/bandwidth.h"
#include "stepdown/bench/host_info.h"
#include "stepdown/bench/summary.h"
#include "stepdown/kernels/matmul.h"
#include "stepdown/model/weights.h"

namespace stepdown::bench {

struct LatencyOptions {
  int64_t prompt_tokens = 512;  // P, fed in one batch
  int64_t decode_tokens = 128;  // D single-token forward passes after the prompt
  int repetitions = 5;          // R timed repetitions
  int warmup = 1;               // untimed repetitions first (page faults, thread start-up, caches)
  int threads = 0;              // worker threads; 0 uses every hardware thread
  // Seed of the synthetic prompt: ids drawn uniformly from [0, vocab_size) by mt19937.
  // A forward pass costs the same whichever ids it gets, so any valid ids serve.
  uint32_t seed = 1234;
  bool measure_bandwidth = true;  // run the read-bandwidth probe with the same threads
  // kInt8 quantizes activations for Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 weights, as llama.cpp does.
  kernels::ActivationPrecision activations = kernels::ActivationPrecision::kF32;
  BandwidthOptions bandwidth;     // its threads field is overridden by `threads`
};

// Called after each repetition (warm-up included) with the number done and the total.
using LatencyProgress = std::function<void(int done, int total)>;

struct LatencyReport {
  LatencyOptions options;
  int threads = 0;  // the pool's actual size
  HostInfo host;

  // Per timed repetition: TTFT (prefill forward pass + argmax of the last logits), prefill
  // tokens/s (P / prefill forward time) and decode tokens/s (D / sum of its TPOTs).
  std::vector<double> ttft_ms;
  std::vector<double> prefill_tokens_per_second;
  std::vector<double> decode_tokens_per_second;
  // Every decode step of every timed repetition (R * D samples): forward pass + argmax.
  std::vector<double> tpot_ms;

  Summary ttft;  // of ttft_ms
  Summary tpot;  // of tpot_ms
  // Medians over repetitions (nearest rank) of the per-repetition rates.
  double prefill_tps = 0.0;  // "pp<P>"
  double decode_tps = 0.0;   // "tg<D>"

  // Bytes one decode step reads: every weight matrix it multiplies (blocks and output) and
  // the keys and values of the past, at the mean context of the decode steps.
  size_t weight_bytes_per_token = 0;
  double mean_decode_context = 0.0;  // positions attended per decode step, averaged
  double kv_bytes_per_token = 0.0;
  double bytes_per_token() const { return static_cast<double>(weight_bytes_per_token) + kv_bytes_per_token; }

  BandwidthResult bandwidth;  // all zero when the probe did not run
  // bytes_per_token * decode_tps / (bandwidth.gb_per_s * 1e9): the fraction of the host's
  // best measured read bandwidth that decode reaches; 0 without a probe.
  double decode_efficiency = 0.0;

  size_t peak_rss_bytes = 0;  // of the whole process, after the last repetition and before the probe
};

// KV cache bytes a decode step reads when it attends over `context` positions: keys and
// values (f32) of every block, each sliding-window block capped at its window.
double kv_bytes_read(const model::ModelConfig& config, int64_t context);

// The synthetic prompt of `options`: options.prompt_tokens ids in [0, vocab_size).
std::vector<int32_t> synthetic_prompt(const model::ModelConfig& config, const LatencyOptions& options);

// Runs the warm-up and timed repetitions on `weights`. Throws InvalidArgument when a
// count is not positive (warm-up may be 0) or P + D exceeds the model's context length.
LatencyReport measure_latency(const model::ModelWeights& weights, const LatencyOptions& options,
                              const LatencyProgress& progress = {});

}  // namespace stepdown::bench
