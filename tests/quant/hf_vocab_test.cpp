// tokenizer.json -> GGUF tokenizer.ggml.*: the GGUF vocabulary must encode text exactly as
// the tokenizer.json it came from (both through stepdown's tokenizers, which are tested
// against HF tokenizers in tests/text).
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/quant/hf_vocab.h"
#include "stepdown/text/tokenizer.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

TEST(EmbedTokenizerJson, Llama3EncodesLikeTokenizerJson) {
  const auto path = test::shared_dir() / "tokenizers" / "llama3" / "tokenizer.json";
  io::Metadata metadata;
  embed_tokenizer_json(path, metadata);
  EXPECT_EQ(metadata.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(metadata.get_string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(metadata.get_int("tokenizer.ggml.bos_token_id"), 128000);
  // This tokenizer.json's post-processor is plain ByteLevel, so HF adds no BOS either.
  EXPECT_FALSE(metadata.get_bool("tokenizer.ggml.add_bos_token").value_or(false));

  const auto from_json = text::load_tokenizer_json(path);
  const auto from_gguf = text::load_gguf_tokenizer(metadata);
  ASSERT_EQ(from_gguf->vocab_size(), from_json->vocab_size());
  for (const char* sample : {"Hello, world!", "  leading spaces and 12345 digits\n\nnew lines",
                             "<|begin_of_text|>special <|eot_id|> tokens", "ünïcödé 日本語 😀", "it's we'LL"}) {
    EXPECT_EQ(from_gguf->encode(sample, true), from_json->encode(sample, true)) << sample;
    EXPECT_EQ(from_gguf->encode(sample, false), from_json->encode(sample, false)) << sample;
  }
}

TEST(EmbedTokenizerJson, SentencePieceBpeIsUnsupported) {
  io::Metadata metadata;
  EXPECT_THROW(embed_tokenizer_json(test::shared_dir() / "tokenizers" / "mistral-7b" / "tokenizer.json", metadata),
               Unsupported);
}

}  // namespace
}  // namespace stepdown::quant
