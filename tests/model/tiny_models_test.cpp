// Tiny random-weight GGUF models for the paths SmolLM2 does not take: qwen2 QKV bias,
// qwen3 q/k RMSNorm with key_length != dim / n_heads, NeoX RoPE, and llama with linear
// RoPE scaling, rope_freqs divisors and an untied output matrix. The models and their
// logits come from scripts/golden/reference_forward.py --tiny (numpy f32).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stepdown/io/model_file.h"
#include "stepdown/model/transformer.h"
#include "test_paths.h"

namespace stepdown::model {
namespace {

std::filesystem::path fixture(const std::string& name) {
  return test::source_dir() / "tests" / "model" / "fixtures" / name;
}

// Weights of magnitude ~0.3 over two blocks give logits of magnitude ~5; f32 summation
// order alone moves them by ~1e-6, so 1e-4 leaves room only for rounding.
constexpr float kTolerance = 1e-4f;

class TinyModel : public ::testing::TestWithParam<std::string> {};

TEST_P(TinyModel, LogitsMatchNumpyReference) {
  const std::string arch = GetParam();
  const io::ModelFile file = io::open_model_file(fixture("tiny_" + arch + ".gguf"));
  const ModelWeights weights = load_weights(file);
  std::ifstream in(fixture("tiny_" + arch + "_logits.json"));
  const nlohmann::json golden = nlohmann::json::parse(in);
  const std::vector<TokenId> tokens = golden.at("tokens").get<std::vector<TokenId>>();

  ThreadPool pool(2);
  Transformer transformer(weights, pool);
  KVCache cache(weights.config, 16);
  Activations logits;
  transformer.forward(tokens, cache, logits, /*all_logits=*/true);

  ASSERT_EQ(logits.rows, static_cast<int64_t>(tokens.size()));
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::vector<float> expected = golden.at("logits").at(t).get<std::vector<float>>();
    ASSERT_EQ(static_cast<int64_t>(expected.size()), logits.cols);
    for (size_t v = 0; v < expected.size(); ++v) {
      ASSERT_NEAR(logits.row(static_cast<int64_t>(t))[v], expected[v], kTolerance) << "position " << t << " id " << v;
    }
  }
}

TEST_P(TinyModel, DecodeStepsMatchPrefill) {
  const std::string arch = GetParam();
  const io::ModelFile file = io::open_model_file(fixture("tiny_" + arch + ".gguf"));
  const ModelWeights weights = load_weights(file);
  ThreadPool pool(2);
  Transformer transformer(weights, pool);
  const std::vector<TokenId> tokens = {1, 17, 42, 5, 63, 8, 30};

  KVCache batched_cache(weights.config, 16);
  Activations batched;
  transformer.forward(tokens, batched_cache, batched, true);
  KVCache stepped_cache(weights.config, 16);
  Activations stepped;
  for (size_t t = 0; t < tokens.size(); ++t) {
    transformer.forward(std::span(tokens).subspan(t, 1), stepped_cache, stepped);
    for (int64_t v = 0; v < stepped.cols; ++v) {
      ASSERT_NEAR(stepped.row(0)[v], batched.row(static_cast<int64_t>(t))[v], kTolerance) << t << " " << v;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, TinyModel, ::testing::Values("qwen2", "qwen3", "llama"));

TEST(TinyModelConfig, ArchitectureFeaturesDetected) {
  const ModelWeights qwen2 = load_weights(io::open_model_file(fixture("tiny_qwen2.gguf")));
  EXPECT_TRUE(qwen2.config.qkv_bias);
  EXPECT_EQ(qwen2.config.rope_layout, RopeLayout::NEOX);
  EXPECT_EQ(qwen2.blocks[0].attn_k_bias.size(), 16u);

  const ModelWeights qwen3 = load_weights(io::open_model_file(fixture("tiny_qwen3.gguf")));
  EXPECT_TRUE(qwen3.config.qk_norm);
  EXPECT_EQ(qwen3.config.head_dim, 16);
  EXPECT_EQ(qwen3.config.q_dim(), 64);
  EXPECT_TRUE(qwen3.config.tied_embeddings);

  const ModelWeights llama = load_weights(io::open_model_file(fixture("tiny_llama.gguf")));
  EXPECT_EQ(llama.config.rope_layout, RopeLayout::INTERLEAVED);
  EXPECT_EQ(llama.config.rope_scaling.type, RopeScalingType::LINEAR);
  EXPECT_EQ(llama.config.rope_scaling.factor, 2.0);
  EXPECT_FALSE(llama.config.tied_embeddings);
  EXPECT_EQ(llama.rope_freq_divisors.size(), 4u);
}

}  // namespace
}  // namespace stepdown::model
