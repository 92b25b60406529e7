#include "stepdown/model/generate.h"

#include <algorithm>
#include <chrono>

#include "stepdown/core/error.h"

namespace stepdown::model {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

GenerationStats generate(Transformer& transformer, KVCache& cache, std::span<const TokenId> prompt, Sampler& sampler,
                         const GenerationOptions& options, const TokenCallback& on_token) {
  if (prompt.empty()) raise<InvalidArgument>("generate: the prompt has no tokens");
  if (cache.length() + static_cast<int64_t>(prompt.size()) > cache.capacity()) {
    raise<InvalidArgument>("generate: a prompt of {} tokens after {} cached positions exceeds the context of {}",
                           prompt.size(), cache.length(), cache.capacity());
  }
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  for (const TokenId token : prompt) sampler.accept(token);
  const auto is_stop = [&](TokenId token) {
    return std::find(options.stop_ids.begin(), options.stop_ids.end(), token) != options.stop_ids.end();
  };

  // Prefill: the whole prompt in one batch, logits of its last token only.
  Activations logits;
  const Clock::time_point start = Clock::now();
  transformer.forward(prompt, cache, logits);
  stats.prefill_seconds = seconds_since(start);
  if (options.max_tokens <= 0) return stats;

  TokenId token = sampler.sample({logits.data.data(), logits.data.size()});
  stats.ttft_seconds = seconds_since(start);

  // Decode: report the sampled token, feed it back, sample the next one.
  while (true) {
    if (is_stop(token)) {
      stats.stop_reason = StopReason::STOP_TOKEN;
      stats.stop_token = token;
      break;
    }
    ++stats.generated_tokens;
    if (!on_token(token)) {
      stats.stop_reason = StopReason::CALLER;
      break;
    }
    if (stats.generated_tokens >= options.max_tokens) {
      stats.stop_reason = StopReason::MAX_TOKENS;
      break;
    }
    if (cache.length() >= cache.capacity()) {
      stats.stop_reason = StopReason::CONTEXT_FULL;
      break;
    }

    const Clock::time_point step_start = Clock::now();
    const TokenId input[1] = {token};
    transformer.forward(input, cache, logits);
    stats.decode_seconds += seconds_since(step_start);
    ++stats.decode_steps;

    token = sampler.sample({logits.data.data(), logits.data.size()});
  }
  return stats;
}

}  // namespace stepdown::model
