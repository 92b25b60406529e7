// stories260K (a llama2.c checkpoint) end to end: greedy text from BOS, and prefill of a
// prompt against token-by-token decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "stepdown/core/error.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/generate.h"
#include "stepdown/model/transformer.h"
#include "test_paths.h"

namespace stepdown::model {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

// The pieces of a llama2.c tokenizer.bin (max token length, then score, length and bytes
// per token), read here so the test does not depend on text/.
std::vector<std::string> read_pieces(const std::filesystem::path& path, int64_t vocab_size) {
  std::ifstream in(path, std::ios::binary);
  int32_t max_length = 0;
  in.read(reinterpret_cast<char*>(&max_length), 4);
  std::vector<std::string> pieces;
  for (int64_t i = 0; i < vocab_size; ++i) {
    float score = 0;
    int32_t length = 0;
    in.read(reinterpret_cast<char*>(&score), 4);
    in.read(reinterpret_cast<char*>(&length), 4);
    std::string piece(static_cast<size_t>(length), '\0');
    in.read(piece.data(), length);
    pieces.push_back(piece);
  }
  EXPECT_TRUE(in.good()) << path;
  return pieces;
}

// llama2.c's decoding: the first piece after BOS loses its leading space and <0xNN>
// pieces are raw bytes.
std::string decode(const std::vector<std::string>& pieces, const std::vector<TokenId>& ids) {
  std::string text;
  TokenId previous = 1;
  for (const TokenId id : ids) {
    std::string piece = pieces.at(static_cast<size_t>(id));
    if (previous == 1 && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    unsigned byte = 0;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1) piece = std::string(1, char(byte));
    text += piece;
    previous = id;
  }
  return text;
}

struct Stories {
  io::ModelFile file = io::open_model_file(stories_dir() / "stories260K.bin");
  ModelWeights weights = load_weights(file);
};

TEST(Stories260K, GreedyFromBosMatchesKnownText) {
  Stories model;
  ThreadPool pool(2);
  Transformer transformer(model.weights, pool);
  KVCache cache(model.weights.config, 128);
  Sampler sampler(SamplerOptions{.temperature = 0.0f});

  std::vector<TokenId> generated;
  const TokenId bos[1] = {1};
  generate(transformer, cache, bos, sampler, GenerationOptions{.max_tokens = 60}, [&](TokenId id) {
    generated.push_back(id);
    return true;
  });

  ASSERT_EQ(generated.size(), 60u);
  const std::vector<std::string> pieces = read_pieces(stories_dir() / "tok512.bin", 512);
  EXPECT_EQ(decode(pieces, generated),
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
            "she saw a big, red ball. She wanted to play with it, but it was too high");
}

TEST(Stories260K, ConfigFromCheckpointHeader) {
  Stories model;
  const ModelConfig& c = model.weights.config;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_layout, RopeLayout::INTERLEAVED);
}

// Prefill runs the prompt through kernels::matmul and one attention call over T tokens;
// decode runs matvec one token at a time. Both sum the same products in the same order
// per row, so only the attention's accumulation over the batch could differ: 1e-4 on
// logits of magnitude ~10 allows for f32 reassociation and nothing more.
TEST(Stories260K, PrefillEqualsTokenByTokenDecode) {
  Stories model;
  ThreadPool pool(2);
  Transformer transformer(model.weights, pool);
  const std::vector<TokenId> prompt = {1, 403, 407, 261, 378, 430, 66, 303, 261, 328, 377, 49, 297};

  KVCache batched_cache(model.weights.config, 64);
  Activations batched;
  transformer.forward(prompt, batched_cache, batched, /*all_logits=*/true);
  ASSERT_EQ(batched.rows, static_cast<int64_t>(prompt.size()));

  KVCache stepped_cache(model.weights.config, 64);
  Activations stepped;
  for (size_t t = 0; t < prompt.size(); ++t) {
    transformer.forward(std::span(prompt).subspan(t, 1), stepped_cache, stepped);
    for (int64_t v = 0; v < stepped.cols; ++v) {
      ASSERT_NEAR(stepped.row(0)[v], batched.row(static_cast<int64_t>(t))[v], 1e-4f) << "token " << t << " id " << v;
    }
  }
  EXPECT_EQ(batched_cache.length(), stepped_cache.length());

  // Decoding after prefill continues exactly like decoding after single steps.
  const TokenId next[1] = {argmax(stepped.row_span(0))};
  transformer.forward(next, batched_cache, batched);
  transformer.forward(next, stepped_cache, stepped);
  for (int64_t v = 0; v < stepped.cols; ++v) ASSERT_NEAR(stepped.row(0)[v], batched.row(0)[v], 1e-4f) << v;
}

TEST(Stories260K, BlockByBlockEqualsForward) {
  Stories model;
  ThreadPool pool(2);
  Transformer transformer(model.weights, pool);
  const std::vector<TokenId> prompt = {1, 403, 407, 261};

  KVCache cache(model.weights.config, 16);
  Activations whole;
  transformer.forward(prompt, cache, whole, true);

  KVCache block_cache(model.weights.config, 16);
  Activations x;
  Activations logits;
  const std::vector<int32_t> positions = {0, 1, 2, 3};
  transformer.embed(prompt, x);
  for (int64_t layer = 0; layer < model.weights.config.n_layers; ++layer) {
    transformer.forward_block(layer, x, positions, block_cache);
  }
  transformer.compute_logits(x, logits, true);
  ASSERT_EQ(logits.data.size(), whole.data.size());
  for (size_t i = 0; i < logits.data.size(); ++i) ASSERT_EQ(logits.data[i], whole.data[i]) << i;
}

TEST(Stories260K, ObserverSeesNamedIntermediates) {
  Stories model;
  ThreadPool pool(1);
  Transformer transformer(model.weights, pool);
  std::vector<std::string> names;
  transformer.set_observer([&](int64_t layer, std::string_view name, const Activations& x) {
    if (layer == 0) names.push_back(fmt::format("{}:{}x{}", name, x.rows, x.cols));
  });
  KVCache cache(model.weights.config, 8);
  Activations logits;
  const std::vector<TokenId> prompt = {1, 403};
  transformer.forward(prompt, cache, logits);
  EXPECT_EQ(names, (std::vector<std::string>{"attn_norm:2x64", "q:2x64", "k:2x32", "v:2x32", "q_rope:2x64",
                                             "k_rope:2x32", "attn_heads:2x64", "attn_out:2x64", "ffn_inp:2x64",
                                             "ffn_norm:2x64", "ffn_gate:2x172", "ffn_up:2x172", "ffn_act:2x172",
                                             "ffn_out:2x64", "block_out:2x64"}));
}

// With one block, a token's output depends only on the tokens inside its window, and RoPE
// makes attention depend only on relative positions. So the last logits of 10 tokens under
// a 4-token window equal those of the last 4 tokens alone with full attention, up to the
// f32 rounding of the rotation angles (1e-4).
TEST(Stories260K, SlidingWindowSeesOnlyRecentTokens) {
  Stories model;
  ModelWeights one_block = model.weights;
  one_block.blocks.resize(1);
  one_block.config.n_layers = 1;
  ModelWeights windowed = one_block;
  windowed.config.sliding_window = 4;
  windowed.config.sliding_window_pattern = 0;
  windowed.config.rope_theta_sliding = windowed.config.rope_theta;
  ThreadPool pool(1);
  const std::vector<TokenId> tokens = {1, 403, 407, 261, 378, 430, 66, 303, 261, 328};
  const std::vector<TokenId> last_four(tokens.end() - 4, tokens.end());

  Transformer windowed_model(windowed, pool);
  KVCache windowed_cache(windowed.config, 16);
  Activations windowed_logits;
  windowed_model.forward(tokens, windowed_cache, windowed_logits);

  Transformer full_model(one_block, pool);
  KVCache short_cache(one_block.config, 16);
  Activations short_logits;
  full_model.forward(last_four, short_cache, short_logits);
  KVCache long_cache(one_block.config, 16);
  Activations long_logits;
  full_model.forward(tokens, long_cache, long_logits);

  float max_from_long = 0.0f;
  for (int64_t v = 0; v < windowed_logits.cols; ++v) {
    ASSERT_NEAR(windowed_logits.row(0)[v], short_logits.row(0)[v], 1e-4f) << v;
    max_from_long = std::max(max_from_long, std::abs(windowed_logits.row(0)[v] - long_logits.row(0)[v]));
  }
  EXPECT_GT(max_from_long, 1e-2f) << "the window made no difference, so this test checks nothing";
}

TEST(Stories260K, ForwardPastCacheCapacityThrows) {
  Stories model;
  ThreadPool pool(1);
  Transformer transformer(model.weights, pool);
  KVCache cache(model.weights.config, 2);
  Activations logits;
  const std::vector<TokenId> prompt = {1, 403, 407};
  EXPECT_THROW(transformer.forward(prompt, cache, logits), InvalidArgument);
  const std::vector<TokenId> bad_id = {1, 9999};
  EXPECT_THROW(transformer.forward(bad_id, cache, logits), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::model
