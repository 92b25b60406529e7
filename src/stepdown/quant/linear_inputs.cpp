#include "stepdown/quant/linear_inputs.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "stepdown/core/error.h"
#include "stepdown/core/progress.h"
#include "stepdown/model/kv_cache.h"

namespace stepdown::quant {
namespace {

// Adds the rows of x (T, C) to the statistics, keeping the rows whose global token index
// (first_token + t) is a multiple of `stride`, up to `max_sample` rows.
void accumulate(ChannelStats& stats, const model::Activations& x, int64_t first_token, int64_t stride,
                int64_t max_sample) {
  if (stats.abs_sum.empty()) {
    stats.abs_sum.assign(static_cast<size_t>(x.cols), 0.0);
    stats.abs_max.assign(static_cast<size_t>(x.cols), 0.0f);
    stats.sample.resize(0, x.cols);
  }
  for (int64_t t = 0; t < x.rows; ++t) {
    const float* row = x.row(t);
    for (int64_t c = 0; c < x.cols; ++c) {
      const float magnitude = std::fabs(row[c]);
      stats.abs_sum[static_cast<size_t>(c)] += magnitude;
      stats.abs_max[static_cast<size_t>(c)] = std::max(stats.abs_max[static_cast<size_t>(c)], magnitude);
    }
    if ((first_token + t) % stride == 0 && stats.sample.rows < max_sample) {
      stats.sample.data.insert(stats.sample.data.end(), row, row + x.cols);
      stats.sample.rows += 1;
    }
  }
  stats.tokens += x.rows;
}

}  // namespace

std::vector<float> ChannelStats::mean_abs() const {
  std::vector<float> mean(abs_sum.size(), 0.0f);
  if (tokens == 0) return mean;
  for (size_t c = 0; c < abs_sum.size(); ++c) mean[c] = static_cast<float>(abs_sum[c] / static_cast<double>(tokens));
  return mean;
}

std::vector<BlockInputs> collect_block_inputs(model::Transformer& model,
                                              const std::vector<std::vector<model::TokenId>>& sequences,
                                              int64_t sample_tokens) {
  const model::ModelConfig& config = model.config();
  int64_t total = 0;
  int64_t longest = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    const int64_t length = static_cast<int64_t>(sequences[s].size());
    if (length == 0) raise<InvalidArgument>("calibration sequence {} is empty", s);
    total += length;
    longest = std::max(longest, length);
  }
  if (config.context_length > 0 && longest > config.context_length) {
    raise<InvalidArgument>("a calibration sequence has {} tokens but the model's context is {}; lower --calib-seq-len",
                           longest, config.context_length);
  }
  const int64_t stride = std::max<int64_t>(1, total / std::max<int64_t>(1, sample_tokens));

  std::vector<BlockInputs> inputs(static_cast<size_t>(config.n_layers));
  int64_t first_token = 0;
  model.set_observer([&](int64_t layer, std::string_view name, const model::Activations& x) {
    if (layer < 0) return;
    BlockInputs& block = inputs[static_cast<size_t>(layer)];
    ChannelStats* stats = name == "attn_norm"    ? &block.attn_norm
                          : name == "attn_heads" ? &block.attn_heads
                          : name == "ffn_norm"   ? &block.ffn_norm
                          : name == "ffn_act"    ? &block.ffn_act
                                                 : nullptr;
    if (stats != nullptr) accumulate(*stats, x, first_token, stride, sample_tokens);
  });

  // Each sequence goes through every block from position 0; the logits are never needed.
  Progress progress("calibrate", static_cast<int64_t>(sequences.size()));
  model::Activations x;
  std::vector<int32_t> positions;
  model::KVCache cache(config, longest);
  try {
    for (size_t s = 0; s < sequences.size(); ++s) {
      const std::vector<model::TokenId>& tokens = sequences[s];
      positions.resize(tokens.size());
      for (size_t t = 0; t < tokens.size(); ++t) positions[t] = static_cast<int32_t>(t);
      cache.clear();
      model.embed(tokens, x);
      for (int64_t layer = 0; layer < config.n_layers; ++layer) model.forward_block(layer, x, positions, cache);
      first_token += static_cast<int64_t>(tokens.size());
      progress.update(static_cast<int64_t>(s) + 1);
    }
  } catch (...) {
    model.set_observer({});
    throw;
  }
  model.set_observer({});
  progress.finish();
  return inputs;
}

}  // namespace stepdown::quant
