#include "stepdown/engine/local_engine.h"

#include <algorithm>
#include <chrono>

#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/model/kv_cache.h"
#include "stepdown/model/sampler.h"
#include "stepdown/text/chat_template.h"
#include "stepdown/text/model_tokenizer.h"

namespace stepdown::engine {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Sampling for one request: the argmax at temperature 0, else plain temperature sampling
// over the whole vocabulary (no top-k, top-p or min-p), as an OpenAI endpoint does when a
// request sets only a temperature.
model::SamplerOptions sampler_options(const GenerationRequest& request) {
  model::SamplerOptions options;
  options.temperature = std::max(0.0f, request.temperature);
  options.top_k = 0;
  options.top_p = 1.0f;
  options.min_p = 0.0f;
  options.seed = request.seed;
  return options;
}

}  // namespace

model::WeightConversion parse_weight_conversion(const std::string& name) {
  if (name == "native") return model::WeightConversion::NONE;
  if (name == "f32") return model::WeightConversion::F32;
  if (name == "bf16") return model::WeightConversion::BF16;
  raise<InvalidArgument>("weights format is \"{}\"; expected native, f32 or bf16", name);
}

// One request in flight: its KV cache, sampler, the text so far and its result.
struct LocalEngine::Sequence {
  const GenerationRequest* request = nullptr;
  GenerationResult result;
  model::KVCache cache;
  model::Sampler sampler;
  text::StreamDecoder decoder;
  text::TokenId next = -1;  // sampled, not yet reported or fed
  bool done = false;

  Sequence(const GenerationRequest& r, const model::ModelConfig& config, int64_t capacity,
           const text::Tokenizer& tokenizer)
      : request(&r), cache(config, capacity), sampler(sampler_options(r)), decoder(tokenizer) {
    result.id = r.id;
  }

  // Ends the sequence with `reason`, flushing the text the decoder still holds.
  void finish(const char* reason, Clock::time_point start) {
    result.text += decoder.flush();
    cut_at_stop_string();
    result.finish_reason = reason;
    result.total_ms = ms_since(start);
    done = true;
  }

  // Cuts the text before the first stop string. Returns true when one was found.
  bool cut_at_stop_string() {
    size_t cut = std::string::npos;
    for (const std::string& stop : request->stop) {
      if (stop.empty()) continue;
      cut = std::min(cut, result.text.find(stop));
    }
    if (cut == std::string::npos) return false;
    result.text.resize(cut);
    return true;
  }
};

LocalEngine::LocalEngine(LocalEngineOptions options)
    : options_(std::move(options)), pool_(options_.threads) {
  if (options_.batch < 1) raise<InvalidArgument>("batch size is {}; expected at least 1", options_.batch);
  io::OpenOptions open_options;
  open_options.tokenizer_path = options_.tokenizer_path;
  file_ = io::open_model_file(options_.model_path, open_options);
  tokenizer_ = text::load_model_tokenizer(file_);
  weights_ = model::load_weights(file_, parse_weight_conversion(options_.weights));
  transformer_ = std::make_unique<model::Transformer>(weights_, pool_);
  const model::ModelConfig& config = weights_.config;
  spdlog::info("{}: {} blocks, dim {}, vocab {}, weights {}, {} threads, batch {}", options_.model_path.string(),
               config.n_layers, config.dim, config.vocab_size, options_.weights, pool_.size(), options_.batch);
}

LocalEngine::~LocalEngine() = default;

std::string LocalEngine::describe() const { return "local:" + options_.model_path.string(); }

int64_t LocalEngine::context() const { return std::min(options_.context, weights_.config.context_length); }

std::vector<text::TokenId> LocalEngine::prompt_tokens(const GenerationRequest& request) const {
  if (request.messages.empty()) return tokenizer_->encode(request.prompt, /*add_special=*/true);
  // The chat template writes BOS itself when the model wants one, so the rendered text is
  // encoded without adding special tokens (as Hugging Face's apply_chat_template does).
  const std::string rendered = text::chat_template_for(file_.metadata)->render(request.messages, true);
  return tokenizer_->encode(rendered, /*add_special=*/false);
}

GenerationResult LocalEngine::generate(const GenerationRequest& request) {
  std::vector<GenerationResult> results(1);
  run_batch({request}, 0, 1, results);
  return results[0];
}

std::vector<GenerationResult> LocalEngine::generate_all(const std::vector<GenerationRequest>& requests,
                                                        const ProgressCallback& progress) {
  std::vector<GenerationResult> results(requests.size());
  const size_t batch = static_cast<size_t>(options_.batch);
  for (size_t begin = 0; begin < requests.size(); begin += batch) {
    const size_t end = std::min(requests.size(), begin + batch);
    run_batch(requests, begin, end, results);
    if (progress) progress(end, requests.size());
  }
  return results;
}

void LocalEngine::run_batch(const std::vector<GenerationRequest>& requests, size_t begin, size_t end,
                            std::vector<GenerationResult>& results) {
  const model::ModelConfig& config = weights_.config;
  const std::vector<text::TokenId> stop_ids = tokenizer_->stop_ids();
  const auto is_stop_id = [&](text::TokenId id) {
    return std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end();
  };
  const Clock::time_point start = Clock::now();

  // Prefill each prompt on its own (prompts differ in length) and sample its first token.
  std::vector<std::unique_ptr<Sequence>> sequences;
  model::Activations logits;
  for (size_t i = begin; i < end; ++i) {
    const GenerationRequest& request = requests[i];
    if (request.max_tokens < 1) {
      raise<InvalidArgument>("request '{}': max_tokens is {}; expected at least 1", request.id, request.max_tokens);
    }
    const std::vector<text::TokenId> prompt = prompt_tokens(request);
    if (prompt.empty()) raise<InvalidArgument>("request '{}': the prompt encodes to no tokens", request.id);
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    if (n_prompt >= context()) {
      raise<InvalidArgument>("request '{}': the prompt has {} tokens; the context holds {}", request.id, n_prompt,
                             context());
    }
    const int64_t capacity = std::min(context(), n_prompt + request.max_tokens);
    auto sequence = std::make_unique<Sequence>(request, config, capacity, *tokenizer_);
    sequence->result.prompt_tokens = static_cast<int>(n_prompt);
    for (const text::TokenId token : prompt) sequence->sampler.accept(token);
    transformer_->forward(prompt, sequence->cache, logits);
    sequence->next = sequence->sampler.sample({logits.data.data(), logits.data.size()});
    sequence->result.ttft_ms = ms_since(start);
    sequences.push_back(std::move(sequence));
  }

  // Decode: report each sequence's sampled token or end it, then feed the live ones
  // together, one token each.
  std::vector<text::TokenId> step_tokens;
  std::vector<model::KVCache*> step_caches;
  std::vector<Sequence*> step_sequences;
  while (true) {
    step_tokens.clear();
    step_caches.clear();
    step_sequences.clear();
    for (const std::unique_ptr<Sequence>& s : sequences) {
      if (s->done) continue;
      if (is_stop_id(s->next)) {
        s->finish("stop", start);
        continue;
      }
      ++s->result.completion_tokens;
      s->result.text += s->decoder.push(s->next);
      if (s->cut_at_stop_string()) {
        s->finish("stop", start);
        continue;
      }
      if (s->result.completion_tokens >= s->request->max_tokens) {
        s->finish("length", start);
        continue;
      }
      if (s->cache.length() >= s->cache.capacity()) {
        // A full context cuts the answer short of max_tokens, which a metric would score
        // as a worse answer, so it is logged on stderr as well as given in finish_reason.
        spdlog::warn("request '{}': the context of {} tokens filled after {} of {} generated tokens; raise --ctx",
                     s->request->id, s->cache.capacity(), s->result.completion_tokens, s->request->max_tokens);
        s->finish("length", start);
        continue;
      }
      step_tokens.push_back(s->next);
      step_caches.push_back(&s->cache);
      step_sequences.push_back(s.get());
    }
    if (step_tokens.empty()) break;

    transformer_->forward_batch(step_tokens, step_caches, logits);
    for (size_t b = 0; b < step_sequences.size(); ++b) {
      float* row = logits.row(static_cast<int64_t>(b));
      step_sequences[b]->next = step_sequences[b]->sampler.sample({row, static_cast<size_t>(logits.cols)});
    }
  }

  for (size_t i = begin; i < end; ++i) results[i] = std::move(sequences[i - begin]->result);
}

}  // namespace stepdown::engine
