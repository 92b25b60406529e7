// LocalEngine on stories260K: batched greedy decoding gives exactly the text of one
// request at a time and of model::generate, and requests end as they ask (max_tokens,
// stop strings, end of sequence) with their token counts.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/engine/local_engine.h"
#include "stepdown/model/generate.h"
#include "test_paths.h"

namespace stepdown::engine {
namespace {

LocalEngineOptions stories_options(int batch) {
  LocalEngineOptions options;
  options.model_path = test::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  options.tokenizer_path = test::shared_dir() / "models" / "stories260K" / "tok512.bin";
  options.threads = 2;
  options.batch = batch;
  return options;
}

std::vector<GenerationRequest> story_requests() {
  const char* prompts[] = {"Once upon a time", "Lily wanted to", "The dog", "One day, Tom and Sue went to the park",
                           "She was sad because", "A big"};
  std::vector<GenerationRequest> requests;
  int n = 0;
  for (const char* prompt : prompts) {
    GenerationRequest request;
    request.id = "r" + std::to_string(n);
    request.prompt = prompt;
    request.max_tokens = 20 + 7 * n;  // different lengths, so sequences leave the batch at different steps
    requests.push_back(request);
    ++n;
  }
  return requests;
}

TEST(LocalEngine, BatchedGreedyEqualsOneAtATime) {
  LocalEngine single(stories_options(1));
  LocalEngine batched(stories_options(4));
  const std::vector<GenerationRequest> requests = story_requests();
  const std::vector<GenerationResult> one = single.generate_all(requests);
  size_t progress_calls = 0;
  const std::vector<GenerationResult> many =
      batched.generate_all(requests, [&](size_t done, size_t total) {
        ++progress_calls;
        EXPECT_EQ(total, requests.size());
      });
  EXPECT_EQ(progress_calls, 2u);  // batches of 4 and 2
  ASSERT_EQ(one.size(), requests.size());
  ASSERT_EQ(many.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(requests[i].id);
    EXPECT_EQ(many[i].id, requests[i].id);
    EXPECT_FALSE(one[i].text.empty());
    EXPECT_EQ(many[i].text, one[i].text);
    EXPECT_EQ(many[i].completion_tokens, one[i].completion_tokens);
    EXPECT_EQ(many[i].prompt_tokens, one[i].prompt_tokens);
    EXPECT_EQ(many[i].finish_reason, one[i].finish_reason);
    EXPECT_GT(many[i].total_ms, 0.0);
    EXPECT_LE(many[i].ttft_ms, many[i].total_ms);
  }
}

TEST(LocalEngine, GreedyEqualsModelGenerate) {
  LocalEngine engine(stories_options(3));
  GenerationRequest request;
  request.id = "story";
  request.prompt = "Once upon a time";
  request.max_tokens = 40;
  const GenerationResult result = engine.generate_all({request, request, request})[1];

  // The same prompt through model::generate with a greedy sampler, decoded in one piece.
  const std::vector<text::TokenId> prompt = engine.prompt_tokens(request);
  model::KVCache cache(engine.transformer().config(), 512);
  model::SamplerOptions greedy;
  greedy.temperature = 0.0f;
  model::Sampler sampler(greedy);
  model::GenerationOptions options;
  options.max_tokens = request.max_tokens;
  options.stop_ids = engine.tokenizer().stop_ids();
  std::vector<text::TokenId> tokens;
  model::generate(engine.transformer(), cache, prompt, sampler, options, [&](model::TokenId id) {
    tokens.push_back(id);
    return true;
  });
  EXPECT_EQ(result.text, engine.tokenizer().decode(tokens, /*skip_special=*/true));
  EXPECT_EQ(result.completion_tokens, static_cast<int>(tokens.size()));
  EXPECT_EQ(result.prompt_tokens, static_cast<int>(prompt.size()));
}

TEST(LocalEngine, CompletionPromptStartsWithBos) {
  LocalEngine engine(stories_options(1));
  GenerationRequest request;
  request.prompt = "Once upon a time";
  const std::vector<text::TokenId> tokens = engine.prompt_tokens(request);
  ASSERT_FALSE(tokens.empty());
  ASSERT_TRUE(engine.tokenizer().bos_id().has_value());
  EXPECT_EQ(tokens.front(), *engine.tokenizer().bos_id());
}

TEST(LocalEngine, MaxTokensEndsWithLength) {
  LocalEngine engine(stories_options(2));
  GenerationRequest request;
  request.id = "short";
  request.prompt = "Once upon a time";
  request.max_tokens = 5;
  const GenerationResult result = engine.generate(request);
  EXPECT_EQ(result.finish_reason, "length");
  EXPECT_EQ(result.completion_tokens, 5);
  EXPECT_EQ(result.id, "short");
}

TEST(LocalEngine, StopStringCutsTheText) {
  LocalEngine engine(stories_options(2));
  GenerationRequest request;
  request.prompt = "Once upon a time";
  request.max_tokens = 60;
  const GenerationResult full = engine.generate(request);
  // Stop at the first "." of the unconstrained text.
  const size_t dot = full.text.find('.');
  ASSERT_NE(dot, std::string::npos) << full.text;
  request.stop = {"."};
  const GenerationResult stopped = engine.generate(request);
  EXPECT_EQ(stopped.finish_reason, "stop");
  EXPECT_EQ(stopped.text, full.text.substr(0, dot));
  EXPECT_LT(stopped.completion_tokens, full.completion_tokens);
}

TEST(LocalEngine, RejectsBadRequests) {
  LocalEngine engine(stories_options(1));
  GenerationRequest request;
  request.id = "zero";
  request.prompt = "Hi";
  request.max_tokens = 0;
  try {
    engine.generate(request);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'zero'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("max_tokens"), std::string::npos) << e.what();
  }
  LocalEngineOptions options = stories_options(1);
  options.weights = "f16";
  EXPECT_THROW(LocalEngine{options}, InvalidArgument);
}

TEST(Transformer, ForwardBatchRowsMatchForwardAlone) {
  LocalEngine engine(stories_options(1));
  model::Transformer& transformer = engine.transformer();
  const model::ModelConfig& config = transformer.config();
  const std::vector<std::vector<text::TokenId>> prompts = {{1, 40, 50}, {1, 7}, {1, 300, 301, 302, 303}};
  const std::vector<text::TokenId> next = {60, 70, 80};

  // Alone: prefill, then one decode step per sequence.
  std::vector<std::vector<float>> alone;
  model::Activations logits;
  for (size_t s = 0; s < prompts.size(); ++s) {
    model::KVCache cache(config, 16);
    transformer.forward(prompts[s], cache, logits);
    const text::TokenId token[1] = {next[s]};
    transformer.forward(token, cache, logits);
    alone.emplace_back(logits.data.begin(), logits.data.end());
  }

  // Together: the same prefills, then one batched decode step.
  std::vector<std::unique_ptr<model::KVCache>> caches;
  std::vector<model::KVCache*> pointers;
  for (const auto& prompt : prompts) {
    caches.push_back(std::make_unique<model::KVCache>(config, 16));
    transformer.forward(prompt, *caches.back(), logits);
    pointers.push_back(caches.back().get());
  }
  transformer.forward_batch(next, pointers, logits);
  ASSERT_EQ(logits.rows, 3);
  for (size_t s = 0; s < prompts.size(); ++s) {
    SCOPED_TRACE(s);
    EXPECT_EQ(caches[s]->length(), static_cast<int64_t>(prompts[s].size() + 1));
    const float* row = logits.row(static_cast<int64_t>(s));
    // Equal up to summation order: the one-token kernel keeps four accumulators per row,
    // the token-tile kernel one per token.
    for (int64_t v = 0; v < logits.cols; ++v) {
      const float expected = alone[s][static_cast<size_t>(v)];
      ASSERT_NEAR(row[v], expected, 1e-5f * std::max(1.0f, std::abs(expected))) << "vocab " << v;
    }
  }
}

}  // namespace
}  // namespace stepdown::engine
