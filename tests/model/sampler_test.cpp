#include "stepdown/model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "stepdown/core/error.h"

namespace stepdown::model {
namespace {

std::vector<float> test_logits() { return {1.0f, 3.0f, 2.5f, -1.0f, 0.5f}; }

TEST(Sampler, GreedySettingsPickArgmax) {
  for (const SamplerOptions& options : {SamplerOptions{.temperature = 0.0f}, SamplerOptions{.top_k = 1},
                                        SamplerOptions{.top_p = 0.0f}}) {
    Sampler sampler(options);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> logits = test_logits();
      EXPECT_EQ(sampler.sample(logits), 1);
    }
  }
}

TEST(Sampler, SameSeedRepeatsTokens) {
  const SamplerOptions options{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 42};
  Sampler a(options);
  Sampler b(options);
  Sampler c(SamplerOptions{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 43});
  std::vector<int32_t> from_a, from_b, from_c;
  for (int i = 0; i < 200; ++i) {
    std::vector<float> logits = test_logits();
    from_a.push_back(a.sample(logits));
    logits = test_logits();
    from_b.push_back(b.sample(logits));
    logits = test_logits();
    from_c.push_back(c.sample(logits));
  }
  EXPECT_EQ(from_a, from_b);
  EXPECT_NE(from_a, from_c);
}

// 40,000 draws at temperature 1 with nothing filtered: each frequency is within 0.01 of
// the softmax probability (the standard error is at most 0.0025, so this is 4 sigma).
TEST(Sampler, FrequenciesFollowSoftmax) {
  Sampler sampler(SamplerOptions{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 7});
  const std::vector<float> base = test_logits();
  std::vector<double> expected(base.size());
  double sum = 0.0;
  for (size_t i = 0; i < base.size(); ++i) sum += expected[i] = std::exp(base[i]);
  std::vector<int> counts(base.size(), 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = base;
    ++counts[static_cast<size_t>(sampler.sample(logits))];
  }
  for (size_t i = 0; i < base.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(counts[i]) / n, expected[i] / sum, 0.01) << "token " << i;
  }
}

TEST(Sampler, TopKKeepsOnlyTopTokens) {
  Sampler sampler(SamplerOptions{.temperature = 5.0f, .top_k = 2, .top_p = 1.0f, .min_p = 0.0f, .seed = 1});
  std::map<int32_t, int> counts;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> logits = test_logits();
    ++counts[sampler.sample(logits)];
  }
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

// Probabilities at temperature 1 of {3, 2.5, 1, 0.5, -1}: 0.51, 0.31, 0.07, 0.04, 0.01.
// top_p 0.8 keeps the first two (0.82 >= 0.8); min_p 0.1 keeps tokens with p >= 0.051.
TEST(Sampler, TopPAndMinPDropUnlikelyTokens) {
  Sampler top_p(SamplerOptions{.temperature = 5.0f, .top_k = 0, .top_p = 0.8f, .min_p = 0.0f, .seed = 2});
  Sampler min_p(SamplerOptions{.temperature = 5.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.1f, .seed = 3});
  std::map<int32_t, int> top_p_counts, min_p_counts;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> logits = test_logits();
    ++top_p_counts[top_p.sample(logits)];
    logits = test_logits();
    ++min_p_counts[min_p.sample(logits)];
  }
  EXPECT_EQ(top_p_counts.size(), 2u);
  EXPECT_TRUE(top_p_counts.count(1));
  EXPECT_TRUE(top_p_counts.count(2));
  EXPECT_EQ(min_p_counts.size(), 3u);
  EXPECT_TRUE(min_p_counts.count(0));
  EXPECT_TRUE(min_p_counts.count(1));
  EXPECT_TRUE(min_p_counts.count(2));
}

TEST(Sampler, RepeatPenaltyScalesRecentTokensOnce) {
  Sampler sampler(SamplerOptions{.temperature = 0.0f, .repeat_penalty = 2.0f, .repeat_window = 3});
  for (const int32_t token : {4, 1, 1, 3}) sampler.accept(token);  // window keeps {1, 1, 3}
  std::vector<float> logits = test_logits();
  // Token 1 (logit 3) is halved once, not twice, to 1.5; token 3 (logit -1) doubles to
  // -2; token 4 fell out of the window. Token 2 (2.5) now wins.
  EXPECT_EQ(sampler.sample(logits), 2);
  EXPECT_FLOAT_EQ(logits[1], 1.5f);
  EXPECT_FLOAT_EQ(logits[3], -2.0f);
  EXPECT_FLOAT_EQ(logits[4], 0.5f);
}

TEST(Sampler, InvalidOptionsThrow) {
  EXPECT_THROW(Sampler(SamplerOptions{.temperature = -1.0f}), InvalidArgument);
  EXPECT_THROW(Sampler(SamplerOptions{.top_p = 1.5f}), InvalidArgument);
  EXPECT_THROW(Sampler(SamplerOptions{.min_p = -0.1f}), InvalidArgument);
  EXPECT_THROW(Sampler(SamplerOptions{.repeat_penalty = 0.0f}), InvalidArgument);
  EXPECT_THROW(Sampler(SamplerOptions{.repeat_window = -1}), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::model
