#pragma once
// Rotary position embedding: rotates pairs of dimensions of each q and k head by an angle
// of position * frequency, with the frequencies fixed at load (theta, scaling, divisors).
#include <cstdint>
#include <span>
#include <vector>

#include "stepdown/model/config.h"

namespace stepdown::model {

class Rope {
 public:
  // freq_divisors: per-frequency divisors (GGUF rope_freqs.weight), (rope_dim / 2) or empty.
  Rope(const ModelConfig& config, std::span<const float> freq_divisors);

  // Rotates the first rope_dim dimensions of each of n_heads heads of x (n_heads * head_dim)
  // in place for a token at `position`.
  void apply(float* x, int64_t n_heads, int64_t position) const;

  // Frequencies in radians per position, (rope_dim / 2).
  const std::vector<double>& inverse_frequencies() const { return inv_freq_; }

 private:
  RopeLayout layout_;
  int64_t head_dim_;
  int64_t rope_dim_;
  std::vector<double> inv_freq_;  // (rope_dim / 2)
};

// The frequencies theta^(-2i / rope_dim) for i < rope_dim / 2, after linear or Llama 3
// scaling and division by freq_divisors.
std::vector<double> rope_inverse_frequencies(const ModelConfig& config, std::span<const float> freq_divisors);

}  // namespace stepdown::model
