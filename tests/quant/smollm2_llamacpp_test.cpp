// SmolLM2-135M-Instruct quantized by stepdown at Q8_0 and Q4_0 (from the f32 dequantization
// of the Q4_1 source) and run by both stepdown and llama.cpp. The fixtures under
// tests/golden/quant/smollm2_<scheme>/ come from scripts/golden/make_quant_llamacpp_fixtures.py
// (llama-cpp-python 0.3.36 on the file `stepdown quantize` wrote).
//
// Note what is trivial here: the Q4_1 source lies on a 32-group 4-bit affine grid, and
// Q8_0 re-quantization of it is close to lossless; Q4_0 (symmetric, no offset) is not.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/sampler.h"
#include "stepdown/model/transformer.h"
#include "stepdown/quant/quantize_model.h"
#include "stepdown/quant/sha256.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

constexpr const char* kSourceFile = "SmolLM2-135M-Instruct.Q4_1.gguf";
// The near-tie rule of tests/model/smollm2_golden_test.cpp: ids must be equal wherever
// llama.cpp's top-2 logit margin is at least 0.75, because the largest measured change of
// that margin between stepdown (f32 activations) and llama.cpp (8-bit activation blocks,
// f16 KV cache) on these prompts was 0.72.
constexpr float kMarginTolerance = 0.75f;

void check_greedy_against_llamacpp(const std::string& scheme) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(source, kSourceFile);
  const auto golden_path = test::source_dir() / "tests/golden/quant" / ("smollm2_" + scheme) / "llamacpp_greedy.json";
  std::ifstream in(golden_path);
  ASSERT_TRUE(in.good()) << "missing " << golden_path << "; run scripts/golden/make_quant_llamacpp_fixtures.py";
  const nlohmann::json golden = nlohmann::json::parse(in);

  test::ScratchDir dir("quant_smollm2");
  QuantizeOptions options;
  options.model = source;
  options.scheme = scheme;
  options.output = dir / ("SmolLM2-135M-Instruct." + scheme + ".gguf");
  quantize_model(options);
  // The file llama.cpp ran is byte for byte the one quantized here.
  ASSERT_EQ(sha256_path(options.output), golden.at("sha256").get<std::string>()) << scheme;

  const io::ModelFile file = io::open_model_file(options.output);
  const model::ModelWeights weights = model::load_weights(file);
  ThreadPool pool(0);
  model::Transformer transformer(weights, pool);

  // Teacher-forced: each step sees llama.cpp's own prefix, so every step where llama.cpp's
  // choice is not a near-tie is compared, not only those before the first split.
  int64_t forced_compared = 0;
  for (const nlohmann::json& prompt : golden.at("prompts")) {
    auto tokens = prompt.at("prompt_ids").get<std::vector<model::TokenId>>();
    const size_t n_prompt = tokens.size();
    const nlohmann::json& steps = prompt.at("steps");
    for (size_t k = 0; k + 1 < steps.size(); ++k) tokens.push_back(steps[k].at("id").get<model::TokenId>());
    model::KVCache cache(transformer.config(), static_cast<int64_t>(tokens.size()));
    model::Activations logits;
    transformer.forward(tokens, cache, logits, /*all_logits=*/true);
    for (size_t k = 0; k < steps.size(); ++k) {
      if (steps[k].at("margin").get<float>() < kMarginTolerance) continue;
      ++forced_compared;
      EXPECT_EQ(model::argmax(logits.row_span(static_cast<int64_t>(n_prompt - 1 + k))),
                steps[k].at("id").get<model::TokenId>())
          << scheme << " prompt \"" << prompt.at("text").get<std::string>() << "\" step " << k;
    }
  }
  EXPECT_GT(forced_compared, 150) << "too few steps above the margin tolerance to mean anything";

  // Free-running greedy decoding, as the CLI does it: ids equal until the first split,
  // which must be a near-tie in llama.cpp's logits.
  int64_t matched = 0, split_at_near_tie = 0;
  for (const nlohmann::json& prompt : golden.at("prompts")) {
    const auto prompt_ids = prompt.at("prompt_ids").get<std::vector<model::TokenId>>();
    const nlohmann::json& steps = prompt.at("steps");
    model::KVCache cache(transformer.config(), static_cast<int64_t>(prompt_ids.size() + steps.size()));
    model::Activations logits;
    transformer.forward(prompt_ids, cache, logits);
    for (size_t k = 0; k < steps.size(); ++k) {
      const model::TokenId ours = model::argmax(logits.row_span(0));
      const auto theirs = steps[k].at("id").get<model::TokenId>();
      if (ours != theirs) {
        EXPECT_LT(steps[k].at("margin").get<float>(), kMarginTolerance)
            << scheme << " prompt \"" << prompt.at("text").get<std::string>() << "\" step " << k << ": ours " << ours
            << ", llama.cpp " << theirs;
        ++split_at_near_tie;
        break;
      }
      ++matched;
      const model::TokenId next[1] = {ours};
      transformer.forward(next, cache, logits);
    }
  }
  std::printf("%s: teacher-forced, %lld ids compared; free-running, %lld ids equal to llama.cpp's and %lld prompts "
              "split at a near-tie\n",
              scheme.c_str(), static_cast<long long>(forced_compared), static_cast<long long>(matched),
              static_cast<long long>(split_at_near_tie));
}

TEST(SmolLM2Quantized, Q8_0GreedyMatchesLlamaCpp) { check_greedy_against_llamacpp("q8_0"); }

TEST(SmolLM2Quantized, Q4_0GreedyMatchesLlamaCpp) { check_greedy_against_llamacpp("q4_0"); }

}  // namespace
}  // namespace stepdown::quant
