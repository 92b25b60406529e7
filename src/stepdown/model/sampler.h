#pragma once
// Picks the next token from logits: repeat penalty, then top-k, top-p and min-p on the
// probabilities at temperature 1, then temperature, then a draw from a seeded generator.
// The same options and seed reproduce the same tokens on every platform.
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace stepdown::model {

struct SamplerOptions {
  float temperature = 0.8f;    // <= 0: greedy
  int32_t top_k = 40;          // <= 0: disabled; 1: greedy
  float top_p = 0.95f;         // 1: disabled; 0: greedy
  float min_p = 0.05f;         // 0: disabled; keeps tokens with p >= min_p * max p
  float repeat_penalty = 1.0f; // 1: disabled
  int32_t repeat_window = 64;  // how many recent tokens the penalty looks at
  uint64_t seed = 0;

  // True when the options reduce sampling to the argmax.
  bool greedy() const { return temperature <= 0.0f || top_k == 1 || top_p <= 0.0f; }
};

class Sampler {
 public:
  // Throws InvalidArgument for a negative temperature, top_p or min_p outside [0, 1],
  // a repeat penalty <= 0 or a negative repeat window.
  explicit Sampler(const SamplerOptions& options);

  // Records a token that is part of the sequence (prompt or generated) for the repeat
  // penalty; sample() records the tokens it picks itself.
  void accept(int32_t token);

  // The next token from logits (V). `logits` is modified by the repeat penalty.
  int32_t sample(std::span<float> logits);

  const SamplerOptions& options() const { return options_; }

 private:
  // Divides positive logits and multiplies negative ones by the penalty, once for each
  // distinct token in the recent window (llama.cpp's repetition penalty).
  void apply_repeat_penalty(std::span<float> logits) const;
  // A uniform double in [0, 1) from the top 53 bits of the generator.
  double uniform();

  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// Index of the largest value; the lowest index wins a tie.
int32_t argmax(std::span<const float> values);

}  // namespace stepdown::model
