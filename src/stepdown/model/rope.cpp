#include "stepdown/model/rope.h"

#include <cmath>
#include <numbers>

#include "stepdown/core/error.h"

namespace stepdown::model {

std::vector<double> rope_inverse_frequencies(const ModelConfig& config, std::span<const float> freq_divisors) {
  const int64_t n_freq = config.rope_dim / 2;
  if (!freq_divisors.empty() && static_cast<int64_t>(freq_divisors.size()) != n_freq) {
    raise<InvalidArgument>("RoPE frequency divisors have {} values; expected rope_dim / 2 = {}", freq_divisors.size(),
                           n_freq);
  }
  const RopeScaling& scaling = config.rope_scaling;
  std::vector<double> inv_freq(static_cast<size_t>(n_freq));
  for (int64_t i = 0; i < n_freq; ++i) {
    double f = std::pow(config.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(config.rope_dim));

    if (scaling.type == RopeScalingType::LINEAR) {
      f /= scaling.factor;
    } else if (scaling.type == RopeScalingType::LLAMA3) {
      // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band
      // between the two wavelength edges is blended linearly in context-length units.
      const double old_context = static_cast<double>(scaling.original_context_length);
      const double wavelength = 2.0 * std::numbers::pi / f;
      const double low_freq_wavelength = old_context / scaling.low_freq_factor;
      const double high_freq_wavelength = old_context / scaling.high_freq_factor;
      if (wavelength > low_freq_wavelength) {
        f /= scaling.factor;
      } else if (wavelength >= high_freq_wavelength) {
        const double smooth = (old_context / wavelength - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1.0 - smooth) * f / scaling.factor + smooth * f;
      }
    }

    if (!freq_divisors.empty()) f /= static_cast<double>(freq_divisors[static_cast<size_t>(i)]);
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

Rope::Rope(const ModelConfig& config, std::span<const float> freq_divisors)
    : layout_(config.rope_layout),
      head_dim_(config.head_dim),
      rope_dim_(config.rope_dim),
      inv_freq_(rope_inverse_frequencies(config, freq_divisors)) {}

void Rope::apply(float* x, int64_t n_heads, int64_t position) const {
  const int64_t n_freq = rope_dim_ / 2;
  for (int64_t i = 0; i < n_freq; ++i) {
    // The angle in double: position * frequency reaches 1e5 radians at long contexts, where
    // an f32 product would lose the low digits that cos and sin depend on.
    const double angle = static_cast<double>(position) * inv_freq_[static_cast<size_t>(i)];
    const float cos_a = static_cast<float>(std::cos(angle));
    const float sin_a = static_cast<float>(std::sin(angle));
    // INTERLEAVED rotates (2i, 2i+1); NEOX rotates (i, i + rope_dim/2).
    const int64_t first = layout_ == RopeLayout::INTERLEAVED ? 2 * i : i;
    const int64_t second = layout_ == RopeLayout::INTERLEAVED ? 2 * i + 1 : i + n_freq;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = x + h * head_dim_;
      const float a = head[first];
      const float b = head[second];
      head[first] = a * cos_a - b * sin_a;
      head[second] = a * sin_a + b * cos_a;
    }
  }
}

}  // namespace stepdown::model
