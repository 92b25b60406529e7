#pragma once
// Perplexity and KL divergence over a text, with llama-perplexity's chunking so that the
// numbers compare one to one with llama.cpp's:
//   - the whole text is tokenized once, with the tokenizer's special tokens (BOS when the
//     tokenizer adds one);
//   - the tokens are cut into chunks of `ctx`; a final partial chunk is dropped, and a text
//     of fewer than 2 * ctx tokens is an error;
//   - each chunk starts from an empty KV cache, and its first token is replaced by BOS
//     when the tokenizer adds BOS;
//   - only the second half is scored: the logits at positions ctx/2 .. ctx-2 predict the
//     tokens at ctx/2+1 .. ctx-1, so each chunk scores ctx - 1 - ctx/2 tokens.
// PPL = exp(total NLL / scored tokens), with the standard error of the mean NLL carried
// through exp. KLD(base || candidate) is summed over the full vocabulary per scored token.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "stepdown/model/transformer.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::eval {

struct PerplexityOptions {
  int64_t ctx = 512;    // tokens per chunk
  int64_t batch = 0;    // tokens per forward call within a chunk; 0 means the whole chunk
};

struct PerplexityResult {
  int64_t text_tokens = 0;   // tokens of the whole text
  int64_t chunks = 0;
  int64_t scored_tokens = 0;
  double mean_nll = 0.0;     // nats per scored token
  double ppl = 0.0;
  double ppl_stderr = 0.0;   // ppl * standard error of mean_nll
};

struct KlDivergenceResult {
  double mean = 0.0;           // mean over scored tokens of KL(base || candidate), nats
  double mean_stderr = 0.0;
  double p99 = 0.0;            // 99th percentile, interpolated as llama-perplexity does
  double max = 0.0;
  double same_top_rate = 0.0;  // fraction of tokens whose argmax agrees
  PerplexityResult base;       // the base model's perplexity over the same tokens
};

// Whether `tokenizer` puts BOS in front of encoded text.
bool adds_bos(const text::Tokenizer& tokenizer);

// Called once per chunk after it is scored (chunk index, number of chunks).
using ChunkCallback = std::function<void(int64_t done, int64_t total)>;

// Perplexity of `model` over `tokens` (the tokenized text). Throws InvalidArgument when
// the text is shorter than two chunks or ctx exceeds the model's context.
PerplexityResult perplexity(model::Transformer& model, std::span<const text::TokenId> tokens,
                            std::optional<text::TokenId> bos, const PerplexityOptions& options,
                            const ChunkCallback& on_chunk = {});

// Perplexity of `candidate` with KL divergence against `base` over the same chunks;
// `result` receives the candidate's perplexity. The models must share the vocabulary.
KlDivergenceResult kl_divergence(model::Transformer& base, model::Transformer& candidate,
                                 std::span<const text::TokenId> tokens, std::optional<text::TokenId> bos,
                                 const PerplexityOptions& options, PerplexityResult& result,
                                 const ChunkCallback& on_chunk = {});

}  // namespace stepdown::eval
