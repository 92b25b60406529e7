#pragma once
// The generation loop: prefill the prompt in one batch, then decode one token at a time
// until a stop token, the token limit or a full KV cache.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "stepdown/model/kv_cache.h"
#include "stepdown/model/sampler.h"
#include "stepdown/model/transformer.h"

namespace stepdown::model {

struct GenerationOptions {
  int32_t max_tokens = 256;
  // Tokens that end generation; the stop token itself is neither reported nor fed to the
  // model, so it is not in the KV cache afterwards.
  std::vector<TokenId> stop_ids;
};

enum class StopReason { STOP_TOKEN, MAX_TOKENS, CONTEXT_FULL, CALLER };

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // reported to the callback, stop token excluded
  double prefill_seconds = 0.0;  // the prompt's forward pass
  double ttft_seconds = 0.0;     // prefill plus sampling the first token
  double decode_seconds = 0.0;   // forward passes of generated tokens
  int64_t decode_steps = 0;      // forward passes timed in decode_seconds
  StopReason stop_reason = StopReason::MAX_TOKENS;
  TokenId stop_token = -1;       // the stop token sampled, when stop_reason is STOP_TOKEN

  double prefill_tokens_per_second() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0.0; }
  double decode_tokens_per_second() const { return decode_seconds > 0 ? decode_steps / decode_seconds : 0.0; }
};

// Called with each generated token as soon as it is sampled; return false to stop.
using TokenCallback = std::function<bool(TokenId token)>;

// Feeds `prompt` after the positions already in `cache` (so a chat keeps its history),
// then samples up to options.max_tokens tokens. Every prompt token is shown to the
// sampler's repeat penalty. Throws InvalidArgument when the prompt is empty or does not
// fit in the cache.
GenerationStats generate(Transformer& transformer, KVCache& cache, std::span<const TokenId> prompt, Sampler& sampler,
                         const GenerationOptions& options, const TokenCallback& on_token);

}  // namespace stepdown::model
