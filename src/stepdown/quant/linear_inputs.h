#pragma once
// Statistics of the inputs of every block's linear layers over a calibration set, from
// one float forward pass per sequence with a block observer. Each linear group shares
// one input: q/k/v read "attn_norm", o reads "attn_heads", gate/up read "ffn_norm" and
// down reads "ffn_act" (names of model::BlockObserver).
#include <cstdint>
#include <vector>

#include "stepdown/model/activations.h"
#include "stepdown/model/transformer.h"

namespace stepdown::quant {

// Per-channel statistics of one input X (N, C) and an evenly spaced sample of its rows.
struct ChannelStats {
  std::vector<double> abs_sum;  // (C) sum over tokens of |x|
  std::vector<float> abs_max;   // (C) max over tokens of |x|
  int64_t tokens = 0;           // N
  model::Activations sample;    // (S, C) rows of X, S <= the sample size asked for

  // (C) mean over tokens of |x|.
  std::vector<float> mean_abs() const;
};

struct BlockInputs {
  ChannelStats attn_norm;   // (N, D) input of q, k, v
  ChannelStats attn_heads;  // (N, Q) input of o
  ChannelStats ffn_norm;    // (N, D) input of gate, up
  ChannelStats ffn_act;     // (N, F) input of down
};

// Runs every sequence through `model` from position 0 and returns one BlockInputs per
// block. About `sample_tokens` rows of each input are kept, every (total / sample_tokens)-th
// token across all sequences, so memory stays at sample_tokens * (2D + Q + F) floats per
// block. Throws InvalidArgument when a sequence is empty or longer than the model's
// context.
std::vector<BlockInputs> collect_block_inputs(model::Transformer& model,
                                              const std::vector<std::vector<model::TokenId>>& sequences,
                                              int64_t sample_tokens);

}  // namespace stepdown::quant
