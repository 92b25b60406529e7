// Tokenizer behaviour beyond the golden files: the legacy flag, streaming decode, and the
// errors for bad files and bad input.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/text/tokenizer.h"
#include "test_paths.h"

namespace stepdown::text {
namespace {

using testing::HasSubstr;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::filesystem::path mistral_json() { return test::shared_dir() / "tokenizers/mistral-7b/tokenizer.json"; }

std::string joined_pieces(const Tokenizer& tokenizer, const std::vector<TokenId>& ids, size_t begin) {
  std::string out;
  for (size_t i = begin; i < ids.size(); ++i) out += tokenizer.token_piece(ids[i]);
  return out;
}

// tokenizer_config.json's legacy flag: true (Mistral's own setting) prefixes "▁" to text
// after a special token as well; false prefixes only the start of the input.
TEST(Tokenizer, LegacyFlagControlsPrefixAfterSpecialToken) {
  const std::string json = read_file(mistral_json());
  const auto legacy = parse_tokenizer_json(json, R"({"legacy": true})", "legacy");
  const auto modern = parse_tokenizer_json(json, R"({"legacy": false})", "modern");

  const std::vector<TokenId> legacy_ids = legacy->encode("Hello</s>world", false);
  const std::vector<TokenId> modern_ids = modern->encode("Hello</s>world", false);
  const auto eos_at = [](const std::vector<TokenId>& ids) {
    return static_cast<size_t>(std::find(ids.begin(), ids.end(), 2) - ids.begin());
  };
  ASSERT_LT(eos_at(legacy_ids), legacy_ids.size());
  ASSERT_LT(eos_at(modern_ids), modern_ids.size());
  EXPECT_EQ(joined_pieces(*legacy, legacy_ids, eos_at(legacy_ids) + 1), "\xE2\x96\x81world");
  EXPECT_EQ(joined_pieces(*modern, modern_ids, eos_at(modern_ids) + 1), "world");
  EXPECT_EQ(modern->token_piece(modern_ids[0]).substr(0, 3), "\xE2\x96\x81");  // the input's start keeps it
  EXPECT_EQ(legacy->encode("Hello world", true), modern->encode("Hello world", true));
}

TEST(Tokenizer, ReportsBosEosAndStopIds) {
  const auto llama3 = load_tokenizer_json(test::shared_dir() / "tokenizers/llama3/tokenizer.json");
  EXPECT_EQ(llama3->bos_id(), 128000);
  EXPECT_EQ(llama3->eos_id(), 128001);
  EXPECT_THAT(llama3->stop_ids(), testing::UnorderedElementsAre(128001, 128009));
  EXPECT_TRUE(llama3->is_special(128009));
  EXPECT_FALSE(llama3->is_special(9906));
  EXPECT_EQ(llama3->find_token("<|eot_id|>"), 128009);
  EXPECT_EQ(llama3->token_piece(1917), "\xC4\xA0world");
  EXPECT_EQ(llama3->token_bytes(1917), " world");

  const auto mistral = load_tokenizer_json(mistral_json());
  EXPECT_EQ(mistral->bos_id(), 1);
  EXPECT_EQ(mistral->eos_id(), 2);
  EXPECT_EQ(mistral->token_bytes(*mistral->find_token("<0x0A>")), "\n");
  EXPECT_EQ(mistral->token_bytes(*mistral->find_token("\xE2\x96\x81the")), " the");
}

// Streaming the ids of text with multi-byte characters split over byte-fallback tokens
// never emits part of a character, and the pieces add up to decode().
TEST(StreamDecoder, NeverEmitsHalfACharacter) {
  const auto mistral = load_tokenizer_json(mistral_json());
  const std::string text = "Emoji 👨‍👩‍👧 and 𝔘𝔫𝔦 and CJK 中文测试 and ÆrøÅ done";
  const std::vector<TokenId> ids = mistral->encode(text, true);
  StreamDecoder stream(*mistral);
  std::string streamed;
  size_t held_back = 0;
  for (TokenId id : ids) {
    const std::string piece = stream.push(id);
    if (piece.empty()) ++held_back;
    // Each emitted piece is whole UTF-8 on its own.
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "replacement character in " << piece;
    streamed += piece;
  }
  streamed += stream.flush();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(streamed, mistral->decode(ids, true));
  EXPECT_GT(held_back, 3u);  // the byte tokens of the emoji and the Fraktur letters
}

TEST(StreamDecoder, FlushReplacesIncompleteBytes) {
  const auto mistral = load_tokenizer_json(mistral_json());
  StreamDecoder stream(*mistral);
  EXPECT_EQ(stream.push(*mistral->find_token("<0xF0>")), "");
  EXPECT_EQ(stream.push(*mistral->find_token("<0x9F>")), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.flush(), "");
}

TEST(StreamDecoder, StripsDummyPrefixOfFirstPiece) {
  const auto stories = load_llama2c_tokenizer(test::shared_dir() / "models/stories260K/tok512.bin");
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  const std::vector<TokenId> ids = stories->encode(text, true);
  ASSERT_EQ(ids.front(), 1);
  StreamDecoder stream(*stories);
  std::string streamed;
  for (TokenId id : ids) streamed += stream.push(id);
  EXPECT_EQ(streamed + stream.flush(), text);
  EXPECT_EQ(stories->decode(ids, true), text);
}

TEST(Tokenizer, RejectsInvalidUtf8AndUnknownIds) {
  const auto mistral = load_tokenizer_json(mistral_json());
  try {
    mistral->encode("ok \xC3\x28", false);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("byte 3"));
  }
  EXPECT_THROW(mistral->decode({5, 32000}, false), InvalidArgument);
  EXPECT_THROW(mistral->token_piece(-1), InvalidArgument);
}

class TempFile {
 public:
  TempFile(const std::string& name, const std::string& contents)
      : path_(std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "-" + name)) {
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(Tokenizer, TruncatedTokenizerBinNamesFileAndToken) {
  const std::string full = read_file(test::shared_dir() / "models/stories260K/tok512.bin");
  const TempFile truncated("tok512-truncated.bin", full.substr(0, 101));
  try {
    load_llama2c_tokenizer(truncated.path());
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr(truncated.path().string()));
    EXPECT_THAT(e.what(), HasSubstr("truncated"));
    EXPECT_THAT(e.what(), HasSubstr("token"));
  }
  const TempFile bad_length("tok-bad-length.bin", std::string("\x10\0\0\0\0\0\0\0\xff\xff\0\0", 12));
  EXPECT_THROW(load_llama2c_tokenizer(bad_length.path()), FormatError);
}

TEST(Tokenizer, BadTokenizerJsonIsFormatError) {
  EXPECT_THROW(parse_tokenizer_json("{not json", "", "broken.json"), FormatError);
  try {
    parse_tokenizer_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                             "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}})",
                         "", "bad-regex.json");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("regex"));
  }
  try {
    parse_tokenizer_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})", "", "bad-merge.json");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_THAT(e.what(), HasSubstr("merge 0"));
  }
  EXPECT_THROW(parse_tokenizer_json(R"({"model": {"type": "Unigram", "vocab": []}})", "", "unigram.json"), Unsupported);
}

TEST(Tokenizer, LoadTokenizerFilePicksLoaderByContent) {
  EXPECT_EQ(load_tokenizer_file(test::shared_dir() / "models/stories260K/tok512.bin")->vocab_size(), 512);
  EXPECT_EQ(load_tokenizer_file(mistral_json())->vocab_size(), 32000);
  const TempFile unknown("tokenizer.txt", "hello");
  EXPECT_THROW(load_tokenizer_file(unknown.path()), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::text
