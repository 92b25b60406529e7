// Token ids and decoded text against Hugging Face tokenizers, on 10,000 generated strings
// per vocabulary. scripts/golden/make_tokenizer_fixtures.py wrote the expected values.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "stepdown/io/metadata.h"
#include "stepdown/io/model_file.h"
#include "stepdown/text/model_tokenizer.h"
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

  void add(const std::string& check, const std::string& text, const json& expected, const json& found) {
    if (++count <= 5) {
      examples += check + " for " + json(text).dump() + "\n  expected " + expected.dump() + "\n  found    " + found.dump() + "\n";
    }
  }
};

// Checks every fixture line. `lossless` is true for texts that decode(encode(text)) must give back.
void check_against_fixture(const Tokenizer& tokenizer, const std::string& fixture_name,
                           bool (*lossless)(const std::string& text), size_t min_strings = 10000) {
  const std::string lines = test::read_zstd_file(fixture(fixture_name));
  Mismatches ids_plain, ids_special, decoded, decoded_skip, round_trip;
  size_t strings = 0, round_trips = 0;
  bool ids_only = false;  // a llama.cpp fixture: its detokenizer is not HF's decode
  size_t begin = 0;
  while (begin < lines.size()) {
    size_t end = lines.find('\n', begin);
    if (end == std::string::npos) end = lines.size();
    const json record = json::parse(lines.substr(begin, end - begin));
    begin = end + 1;
    if (record.contains("patch")) continue;  // the header of a patched-tokenizer fixture
    if (record.contains("oracle")) {
      ids_only = record.value("ids_only", false);
      continue;
    }
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
    if (!ids_only) {
      const std::string found_decoded = tokenizer.decode(expected_special, false);
      if (found_decoded != expected_decoded) decoded.add("decode", text, expected_decoded, found_decoded);
      const std::string found_skip = tokenizer.decode(expected_special, true);
      if (found_skip != expected_skip) decoded_skip.add("decode skipping special", text, expected_skip, found_skip);
    }
    if (lossless(text)) {
      ++round_trips;
      const std::string again = tokenizer.decode(found_ids, false);
      if (again != text) round_trip.add("decode(encode(text))", text, text, again);
    }
  }
  EXPECT_GE(strings, min_strings);
  EXPECT_EQ(ids_plain.count, 0u) << ids_plain.examples;
  EXPECT_EQ(ids_special.count, 0u) << ids_special.examples;
  EXPECT_EQ(decoded.count, 0u) << decoded.examples;
  EXPECT_EQ(decoded_skip.count, 0u) << decoded_skip.examples;
  EXPECT_EQ(round_trip.count, 0u) << round_trip.examples;
  std::fprintf(stderr, "%s: %zu strings, %zu round trips checked\n", fixture_name.c_str(), strings, round_trips);
}

bool always_lossless(const std::string&) { return true; }

// SentencePiece text is lossless unless it contains "▁" itself or could contain a
// special-token string ('<'), because the text after a special token gets its own
// dummy-prefix space.
bool sentencepiece_lossless(const std::string& text) {
  return text.find("\xE2\x96\x81") == std::string::npos && text.find('<') == std::string::npos;
}

TEST(TokenizerGolden, Llama3MatchesHuggingFace) {
  const auto tokenizer = load_tokenizer_json(test::shared_dir() / "tokenizers/llama3/tokenizer.json");
  check_against_fixture(*tokenizer, "llama3.jsonl.zst", always_lossless);
}

TEST(TokenizerGolden, Mistral7bMatchesHuggingFace) {
  const auto tokenizer = load_tokenizer_json(test::shared_dir() / "tokenizers/mistral-7b/tokenizer.json");
  check_against_fixture(*tokenizer, "mistral-7b.jsonl.zst", sentencepiece_lossless);
}

bool never_checked(const std::string&) { return false; }

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Applies the fixture's patch (normalizer, added-token flags) to the shared tokenizer.json,
// the same edits the fixture script made before running tokenizers.
std::unique_ptr<Tokenizer> load_patched(const std::string& fixture_name) {
  const std::string lines = test::read_zstd_file(fixture(fixture_name));
  const json header = json::parse(lines.substr(0, lines.find('\n')));
  const std::string base = header.at("base");
  const json& patch = header.at("patch");
  json root = json::parse(read_file(test::shared_dir() / "tokenizers" / base / "tokenizer.json"));
  for (const auto& [key, value] : patch.at("replace").items()) root[key] = value;
  for (const auto& [key, value] : patch.value("model_update", json::object()).items()) root["model"][key] = value;
  for (json& token : root["added_tokens"]) {
    const std::string content = token.at("content");
    if (patch.at("added_tokens_update").contains(content)) token.update(patch.at("added_tokens_update").at(content));
  }
  for (const json& token : patch.at("added_tokens_append")) root["added_tokens"].push_back(token);
  return parse_tokenizer_json(root.dump(), "", fixture_name);
}

TEST(TokenizerGolden, Llama3WithNfcAndTokenFlags) {
  check_against_fixture(*load_patched("llama3-flags.jsonl.zst"), "llama3-flags.jsonl.zst", never_checked, 2000);
}

TEST(TokenizerGolden, Mistral7bWithNfkcAndTokenFlags) {
  check_against_fixture(*load_patched("mistral-7b-flags.jsonl.zst"), "mistral-7b-flags.jsonl.zst", never_checked, 2000);
}

// The Metaspace decoder alone neither turns <0xNN> back into bytes nor keeps a leading
// space, so this pipeline is not lossless.
TEST(TokenizerGolden, MetaspacePreTokenizerAndDecoder) {
  check_against_fixture(*load_patched("mistral-7b-metaspace.jsonl.zst"), "mistral-7b-metaspace.jsonl.zst",
                        never_checked, 2000);
}

TEST(TokenizerGolden, ByteLevelWithPrefixSpace) {
  check_against_fixture(*load_patched("llama3-prefix-space.jsonl.zst"), "llama3-prefix-space.jsonl.zst", never_checked,
                        2000);
}

TEST(TokenizerGolden, SmolLM2MatchesHuggingFace) {
  const std::string json_text = test::read_zstd_file(fixture("smollm2-tokenizer.json.zst"));
  const auto tokenizer = parse_tokenizer_json(json_text, "", "smollm2-tokenizer.json");
  check_against_fixture(*tokenizer, "smollm2.jsonl.zst", always_lossless);
}

// The GGUF path: the vocabulary read from SmolLM2's tokenizer.ggml.* metadata gives the
// same ids as the HF tokenizer built from it.
TEST(TokenizerGolden, SmolLM2GgufMatchesHuggingFace) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
  const auto tokenizer = load_model_tokenizer(io::open_model_file(path));
  EXPECT_EQ(tokenizer->vocab_size(), 49152);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  check_against_fixture(*tokenizer, "smollm2.jsonl.zst", always_lossless);
}

// Llama 3's tokenizer.json rewritten as the tokenizer.ggml.* metadata that llama.cpp's
// converter writes, with `pre` as tokenizer.ggml.pre.
io::Metadata llama3_as_gguf_metadata(const std::string& pre) {
  const json root = json::parse(read_file(test::shared_dir() / "tokenizers/llama3/tokenizer.json"));
  std::vector<std::string> tokens(128256);
  std::vector<int32_t> types(tokens.size(), 1);
  for (const auto& [piece, id] : root.at("model").at("vocab").items()) tokens.at(id.get<size_t>()) = piece;
  for (const json& token : root.at("added_tokens")) {
    tokens.at(token.at("id").get<size_t>()) = token.at("content");
    types.at(token.at("id").get<size_t>()) = 3;  // control
  }
  std::vector<std::string> merges;
  for (const json& merge : root.at("model").at("merges")) merges.push_back(merge.get<std::string>());

  io::Metadata metadata;
  metadata.set_string("tokenizer.ggml.model", "gpt2");
  metadata.set_string("tokenizer.ggml.pre", pre);
  metadata.set_string_array("tokenizer.ggml.tokens", tokens);
  metadata.set_i32_array("tokenizer.ggml.token_type", types);
  metadata.set_string_array("tokenizer.ggml.merges", merges);
  metadata.set_u32("tokenizer.ggml.bos_token_id", 128000);
  metadata.set_u32("tokenizer.ggml.eos_token_id", 128001);
  metadata.set_bool("tokenizer.ggml.add_bos_token", false);
  return metadata;
}

// The GGUF "llama-bpe" path gives the HF ids of Llama 3's own tokenizer.json.
TEST(TokenizerGolden, Llama3AsGgufMetadataMatchesHuggingFace) {
  const auto tokenizer = load_gguf_tokenizer(llama3_as_gguf_metadata("llama-bpe"));
  EXPECT_EQ(tokenizer->bos_id(), 128000);
  check_against_fixture(*tokenizer, "llama3.jsonl.zst", always_lossless);
}

// The GGUF "qwen2" path, over Llama 3's vocabulary, against HF with Qwen 2's pre-tokenizer.
TEST(TokenizerGolden, Qwen2PreTokenizerAsGgufMatchesHuggingFace) {
  const auto tokenizer = load_gguf_tokenizer(llama3_as_gguf_metadata("qwen2"));
  check_against_fixture(*tokenizer, "llama3-qwen2-pre.jsonl.zst", always_lossless, 2000);
}

// Gemma 3's SentencePiece vocabulary (scores, byte tokens, no space prefix) against
// llama.cpp's tokenizer for the same GGUF, through llama-cpp-python.
TEST(TokenizerGolden, Gemma3GgufMatchesLlamaCpp) {
  STEPDOWN_REQUIRE_FETCHED_MODEL(path, "gemma-3-270m-q4_k_m.gguf");
  const auto tokenizer = load_model_tokenizer(io::open_model_file(path));
  EXPECT_EQ(tokenizer->vocab_size(), 262144);
  EXPECT_EQ(tokenizer->bos_id(), 2);
  check_against_fixture(*tokenizer, "gemma3-llama-cpp.jsonl.zst", sentencepiece_lossless, 3000);
}

// llama2.c tokenizer.bin files against a Python transcription of llama2.c's encode().
TEST(TokenizerGolden, Stories260kTokenizerBinMatchesLlama2c) {
  const auto tokenizer = load_llama2c_tokenizer(test::shared_dir() / "models/stories260K/tok512.bin");
  EXPECT_EQ(tokenizer->vocab_size(), 512);
  check_against_fixture(*tokenizer, "stories260k-llama2c.jsonl.zst", always_lossless, 2000);
}

TEST(TokenizerGolden, Llama2TokenizerBinMatchesLlama2c) {
  const auto tokenizer = load_llama2c_tokenizer(test::shared_dir() / "models/llama2-tokenizer/tokenizer.bin");
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  check_against_fixture(*tokenizer, "llama2-llama2c.jsonl.zst", always_lossless, 2000);
}

}  // namespace
}  // namespace stepdown::text
