// Token ids and decoded text against Hugging Face tokenizers, on 10,000 generated strings
// per vocabulary. scripts/golden/make_tokenizer_fixtures.py wrote the expected values.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "stepdown/text/tokenizer.h"
#include "test_paths.h"
#include "text/zstd_file.h"

namespace stepdown::text {
namespace {

using nlohmann::json;

std::filesystem::path fixture(const std::string& name) { return test::source_dir() / "tests/golden/tokenizer" / name; }

struct Mismatches {
  size_t count = 0;
  std::string examples;

  void add(const std::string& what, const std::string& text, const json& expected, const json& found) {
    if (++count <= 5) {
      examples += what + " for " + json(text).dump() + "\n  expected " + expected.dump() + "\n  found    " + found.dump() + "\n";
    }
  }
};

// Checks every fixture line; `lossless` says whether decode(encode(text)) must give the text.
void check_against_fixture(const Tokenizer& tokenizer, const std::string& fixture_name,
                           bool (*lossless)(const std::string& text)) {
  const std::string lines = test::read_zstd_file(fixture(fixture_name));
  Mismatches ids_plain, ids_special, decoded, decoded_skip, round_trip;
  size_t strings = 0, round_trips = 0;
  size_t begin = 0;
  while (begin < lines.size()) {
    size_t end = lines.find('\n', begin);
    if (end == std::string::npos) end = lines.size();
    const json record = json::parse(lines.substr(begin, end - begin));
    begin = end + 1;
    ++strings;

    const std::string text = record.at("text");
    const auto expected_ids = record.at("ids").get<std::vector<TokenId>>();
    const auto expected_special = record.contains("ids_special") ? record.at("ids_special").get<std::vector<TokenId>>() : expected_ids;
    const std::string expected_decoded = record.value("decoded", text);
    const std::string expected_skip = record.value("decoded_skip", expected_decoded);

    const std::vector<TokenId> found_ids = tokenizer.encode(text, false);
    if (found_ids != expected_ids) ids_plain.add("ids", text, expected_ids, found_ids);
    const std::vector<TokenId> found_special = tokenizer.encode(text, true);
    if (found_special != expected_special) ids_special.add("ids with special tokens", text, expected_special, found_special);
    const std::string found_decoded = tokenizer.decode(expected_special, false);
    if (found_decoded != expected_decoded) decoded.add("decode", text, expected_decoded, found_decoded);
    const std::string found_skip = tokenizer.decode(expected_special, true);
    if (found_skip != expected_skip) decoded_skip.add("decode skipping special", text, expected_skip, found_skip);
    if (lossless(text)) {
      ++round_trips;
      const std::string again = tokenizer.decode(found_ids, false);
      if (again != text) round_trip.add("decode(encode(text))", text, text, again);
    }
  }
  EXPECT_GE(strings, 10000u);
  EXPECT_EQ(ids_plain.count, 0u) << ids_plain.examples;
  EXPECT_EQ(ids_special.count, 0u) << ids_special.examples;
  EXPECT_EQ(decoded.count, 0u) << decoded.examples;
  EXPECT_EQ(decoded_skip.count, 0u) << decoded_skip.examples;
  EXPECT_EQ(round_trip.count, 0u) << round_trip.examples;
  std::fprintf(stderr, "%s: %zu strings, %zu round trips checked\n", fixture_name.c_str(), strings, round_trips);
}

bool always_lossless(const std::string&) { return true; }

// SentencePiece text is lossless unless it holds "▁" itself or a special-token string (the
// text after a special token gets its own dummy-prefix space).
bool sentencepiece_lossless(const std::string& text) {
  return text.find("\xE2\x96\x81") == std::string::npos && text.find("<s>") == std::string::npos &&
         text.find("</s>") == std::string::npos && text.find("<unk>") == std::string::npos;
}

TEST(TokenizerGolden, Llama3MatchesHuggingFace) {
  const auto tokenizer = load_tokenizer_json(test::shared_dir() / "tokenizers/llama3/tokenizer.json");
  check_against_fixture(*tokenizer, "llama3.jsonl.zst", always_lossless);
}

TEST(TokenizerGolden, Mistral7bMatchesHuggingFace) {
  const auto tokenizer = load_tokenizer_json(test::shared_dir() / "tokenizers/mistral-7b/tokenizer.json");
  check_against_fixture(*tokenizer, "mistral-7b.jsonl.zst", sentencepiece_lossless);
}

TEST(TokenizerGolden, SmolLM2MatchesHuggingFace) {
  const std::string json_text = test::read_zstd_file(fixture("smollm2-tokenizer.json.zst"));
  const auto tokenizer = parse_tokenizer_json(json_text, "", "smollm2-tokenizer.json");
  check_against_fixture(*tokenizer, "smollm2.jsonl.zst", always_lossless);
}

}  // namespace
}  // namespace stepdown::text
