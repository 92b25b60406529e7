// Perplexity and KL divergence on stories260K with llama-perplexity's chunking: chunk and
// token counts, PPL against a token-by-token recomputation, KLD of a model against itself,
// and the errors for short texts. (bench/compare_ppl.py holds the numbers against
// llama-perplexity itself on SmolLM2.)
#include <cmath>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/engine/local_engine.h"
#include "stepdown/eval/perplexity.h"
#include "test_paths.h"

namespace stepdown::eval {
namespace {

engine::LocalEngineOptions stories_options() {
  engine::LocalEngineOptions options;
  options.model_path = test::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  options.tokenizer_path = test::shared_dir() / "models" / "stories260K" / "tok512.bin";
  options.threads = 2;
  return options;
}

const char* kText =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. "
    "One day, she saw a big red ball under a tree. She ran to the ball and picked it up. Her friend Tom came and "
    "said, \"Can I play with the ball too?\" Lily smiled and said, \"Yes, let's play together!\" They threw the ball "
    "back and forth until the sun went down. Then their moms called them home for dinner. Lily was happy because "
    "she had a fun day with her friend. The next morning, Lily woke up early. She wanted to find the ball again.";

class Perplexity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = new engine::LocalEngine(stories_options()); }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  std::vector<text::TokenId> tokens() const { return engine_->tokenizer().encode(kText, /*add_special=*/true); }
  std::optional<text::TokenId> bos() const { return engine_->tokenizer().bos_id(); }

  static engine::LocalEngine* engine_;
};

engine::LocalEngine* Perplexity::engine_ = nullptr;

TEST_F(Perplexity, ChunksAndScoredTokensFollowLlamaPerplexity) {
  ASSERT_TRUE(adds_bos(engine_->tokenizer()));
  const std::vector<text::TokenId> ids = tokens();
  PerplexityOptions options;
  options.ctx = 32;
  const PerplexityResult result = perplexity(engine_->transformer(), ids, bos(), options);
  const int64_t chunks = static_cast<int64_t>(ids.size()) / 32;
  ASSERT_GE(chunks, 2);
  EXPECT_EQ(result.text_tokens, static_cast<int64_t>(ids.size()));
  EXPECT_EQ(result.chunks, chunks);
  EXPECT_EQ(result.scored_tokens, chunks * (32 - 1 - 16));
  EXPECT_NEAR(result.ppl, std::exp(result.mean_nll), 1e-12 * result.ppl);
  EXPECT_GT(result.ppl, 1.0);
  EXPECT_GT(result.ppl_stderr, 0.0);
}

// The same quantity recomputed one token at a time (decode path, float log-softmax).
TEST_F(Perplexity, EqualsTokenByTokenRecomputation) {
  const std::vector<text::TokenId> ids = tokens();
  const int64_t ctx = 32;
  const int64_t chunks = static_cast<int64_t>(ids.size()) / ctx;
  model::Transformer& model = engine_->transformer();
  double nll = 0.0;
  int64_t count = 0;
  model::Activations logits;
  for (int64_t c = 0; c < chunks; ++c) {
    model::KVCache cache(model.config(), ctx);
    for (int64_t p = 0; p < ctx - 1; ++p) {
      const text::TokenId token[1] = {p == 0 ? *bos() : ids[static_cast<size_t>(c * ctx + p)]};
      model.forward(token, cache, logits);
      if (p < ctx / 2) continue;
      const text::TokenId target = ids[static_cast<size_t>(c * ctx + p + 1)];
      float max = logits.data[0];
      for (const float v : logits.data) max = std::max(max, v);
      double sum = 0.0;
      for (const float v : logits.data) sum += std::exp(v - max);
      nll += max + std::log(sum) - logits.data[static_cast<size_t>(target)];
      ++count;
    }
  }
  PerplexityOptions options;
  options.ctx = ctx;
  const PerplexityResult result = perplexity(model, ids, bos(), options);
  EXPECT_EQ(result.scored_tokens, count);
  EXPECT_NEAR(result.ppl, std::exp(nll / count), 1e-5 * result.ppl);

  // Feeding each chunk in pieces of 8 tokens changes nothing but summation order.
  options.batch = 8;
  EXPECT_NEAR(perplexity(model, ids, bos(), options).ppl, result.ppl, 1e-5 * result.ppl);
}

TEST_F(Perplexity, ModelAgainstItselfHasZeroKld) {
  const std::vector<text::TokenId> ids = tokens();
  PerplexityOptions options;
  options.ctx = 32;
  engine::LocalEngine other(stories_options());
  PerplexityResult candidate;
  const KlDivergenceResult kl =
      kl_divergence(engine_->transformer(), other.transformer(), ids, bos(), options, candidate);
  EXPECT_NEAR(kl.mean, 0.0, 1e-9);
  EXPECT_NEAR(kl.p99, 0.0, 1e-9);
  EXPECT_DOUBLE_EQ(kl.same_top_rate, 1.0);
  EXPECT_DOUBLE_EQ(kl.base.ppl, candidate.ppl);
  EXPECT_DOUBLE_EQ(candidate.ppl, perplexity(engine_->transformer(), ids, bos(), options).ppl);
}

TEST_F(Perplexity, BfloatCandidateHasSmallPositiveKld) {
  const std::vector<text::TokenId> ids = tokens();
  PerplexityOptions options;
  options.ctx = 32;
  engine::LocalEngineOptions bf16 = stories_options();
  bf16.weights = "bf16";
  engine::LocalEngine rounded(bf16);
  PerplexityResult candidate;
  const KlDivergenceResult kl =
      kl_divergence(engine_->transformer(), rounded.transformer(), ids, bos(), options, candidate);
  EXPECT_GT(kl.mean, 0.0);
  EXPECT_LT(kl.mean, 0.05);
  EXPECT_GE(kl.p99, kl.mean);
  EXPECT_LE(kl.p99, kl.max);
  EXPECT_GT(kl.same_top_rate, 0.8);
  EXPECT_NE(candidate.ppl, kl.base.ppl);
}

TEST_F(Perplexity, ShortTextIsRejected) {
  const std::vector<text::TokenId> ids = tokens();
  PerplexityOptions options;
  options.ctx = static_cast<int64_t>(ids.size());  // one chunk only
  try {
    perplexity(engine_->transformer(), ids, bos(), options);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("needs at least " + std::to_string(2 * ids.size())), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace stepdown::eval
