// GGUF vocabulary loading from metadata: errors for incomplete metadata, and the chat
// template chosen for the fetched models.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/io/metadata.h"
#include "stepdown/io/model_file.h"
#include "stepdown/text/chat_template.h"
#include "stepdown/text/tokenizer.h"
#include "test_paths.h"

namespace stepdown::text {
namespace {

using testing::HasSubstr;

// A tiny byte-level vocabulary: "a", "b", "ab" and one control token.
io::Metadata tiny_gpt2_metadata() {
  io::Metadata metadata;
  metadata.set_string("tokenizer.ggml.model", "gpt2");
  metadata.set_string("tokenizer.ggml.pre", "smollm");
  metadata.set_string_array("tokenizer.ggml.tokens", {"<|end|>", "a", "b", "ab", "\xC4\xA0"});
  metadata.set_i32_array("tokenizer.ggml.token_type", {3, 1, 1, 1, 1});
  metadata.set_string_array("tokenizer.ggml.merges", {"a b"});
  metadata.set_u32("tokenizer.ggml.eos_token_id", 0);
  return metadata;
}

TEST(GgufTokenizer, TinyByteLevelVocabulary) {
  const auto tokenizer = load_gguf_tokenizer(tiny_gpt2_metadata());
  EXPECT_EQ(tokenizer->encode("ab<|end|>ba", true), (std::vector<TokenId>{3, 0, 2, 1}));
  EXPECT_EQ(tokenizer->decode({3, 4, 0}, true), "ab ");
  EXPECT_EQ(tokenizer->stop_ids(), std::vector<TokenId>{0});
}

TEST(GgufTokenizer, IncompleteMetadataIsNamed) {
  io::Metadata no_merges = tiny_gpt2_metadata();
  no_merges.set_string_array("tokenizer.ggml.merges", {"ab"});
  try {
    load_gguf_tokenizer(no_merges);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tokenizer.ggml.merges[0]"));
  }

  io::Metadata bad_pre = tiny_gpt2_metadata();
  bad_pre.set_string("tokenizer.ggml.pre", "mystery");
  EXPECT_THROW(load_gguf_tokenizer(bad_pre), Unsupported);

  io::Metadata bad_types = tiny_gpt2_metadata();
  bad_types.set_i32_array("tokenizer.ggml.token_type", {1, 1});
  try {
    load_gguf_tokenizer(bad_types);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tokenizer.ggml.token_type"));
  }

  io::Metadata sentencepiece = tiny_gpt2_metadata();
  sentencepiece.set_string("tokenizer.ggml.model", "llama");
  sentencepiece.set_f32_array("tokenizer.ggml.scores", {0.0f, 1.0f});
  try {
    load_gguf_tokenizer(sentencepiece);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tokenizer.ggml.scores"));
  }

  io::Metadata unigram = tiny_gpt2_metadata();
  unigram.set_string("tokenizer.ggml.model", "t5");
  EXPECT_THROW(load_gguf_tokenizer(unigram), Unsupported);
  EXPECT_THROW(load_gguf_tokenizer(io::Metadata()), FormatError);
}

TEST(GgufTokenizer, ChatTemplateForFetchedModels) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(smollm, "SmolLM2-135M-Instruct.Q4_1.gguf");
  EXPECT_EQ(chat_template_for(io::open_model_file(smollm).metadata)->name(), "chatml");
  STEPDOWN_REQUIRE_FETCHED_MODEL(gemma, "gemma-3-270m-q4_k_m.gguf");
  EXPECT_EQ(chat_template_for(io::open_model_file(gemma).metadata)->name(), "gemma");
}

}  // namespace
}  // namespace stepdown::text
