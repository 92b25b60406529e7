#include "stepdown/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "stepdown/core/error.h"

namespace stepdown::model {

int32_t argmax(std::span<const float> values) {
  int32_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {
  if (options.temperature < 0.0f || std::isnan(options.temperature)) {
    raise<InvalidArgument>("temperature is {}; expected a value >= 0", options.temperature);
  }
  if (!(options.top_p >= 0.0f && options.top_p <= 1.0f)) {
    raise<InvalidArgument>("top-p is {}; expected a value in [0, 1]", options.top_p);
  }
  if (!(options.min_p >= 0.0f && options.min_p <= 1.0f)) {
    raise<InvalidArgument>("min-p is {}; expected a value in [0, 1]", options.min_p);
  }
  if (!(options.repeat_penalty > 0.0f)) {
    raise<InvalidArgument>("repeat penalty is {}; expected a value > 0", options.repeat_penalty);
  }
  if (options.repeat_window < 0) {
    raise<InvalidArgument>("repeat window is {}; expected a value >= 0", options.repeat_window);
  }
}

void Sampler::accept(int32_t token) {
  if (options_.repeat_window == 0) return;
  recent_.push_back(token);
  while (static_cast<int32_t>(recent_.size()) > options_.repeat_window) recent_.pop_front();
}

void Sampler::apply_repeat_penalty(std::span<float> logits) const {
  if (options_.repeat_penalty == 1.0f) return;
  std::unordered_set<int32_t> seen;
  for (const int32_t token : recent_) {
    if (token < 0 || static_cast<size_t>(token) >= logits.size() || !seen.insert(token).second) continue;
    float& logit = logits[static_cast<size_t>(token)];
    logit = logit > 0.0f ? logit / options_.repeat_penalty : logit * options_.repeat_penalty;
  }
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<float> logits) {
  if (logits.empty()) raise<InvalidArgument>("sample: no logits given");
  apply_repeat_penalty(logits);

  if (options_.greedy()) {
    const int32_t token = argmax(logits);
    accept(token);
    return token;
  }

  // Candidates sorted by logit, highest first; top-k keeps the first k.
  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  const size_t k = options_.top_k > 0 ? std::min(static_cast<size_t>(options_.top_k), candidates_.size())
                                      : candidates_.size();
  const auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(k), candidates_.end(), by_logit);
  candidates_.resize(k);

  // Probabilities at temperature 1 over the remaining candidates, for top-p and min-p.
  const float max_logit = candidates_.front().first;
  std::vector<double> probs(candidates_.size());
  double sum = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    probs[i] = std::exp(static_cast<double>(candidates_[i].first - max_logit));
    sum += probs[i];
  }

  // Top-p: the smallest prefix whose probability mass reaches top_p.
  size_t keep = candidates_.size();
  if (options_.top_p < 1.0f) {
    double mass = 0.0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      mass += probs[i] / sum;
      if (mass >= options_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }

  // Min-p: drop tokens less likely than min_p times the most likely one (probs[0] = 1).
  if (options_.min_p > 0.0f) {
    size_t min_p_keep = 1;
    while (min_p_keep < keep && probs[min_p_keep] >= options_.min_p) ++min_p_keep;
    keep = min_p_keep;
  }
  candidates_.resize(keep);

  // Temperature, then one draw from the renormalized distribution.
  std::vector<double> weights(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    weights[i] = std::exp(static_cast<double>(candidates_[i].first - max_logit) / options_.temperature);
    total += weights[i];
  }
  const double target = uniform() * total;
  double cumulative = 0.0;
  int32_t token = candidates_.back().second;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += weights[i];
    if (target < cumulative) {
      token = candidates_[i].second;
      break;
    }
  }
  accept(token);
  return token;
}

}  // namespace stepdown::model
