// Calibration data: file detection, tokenization, seeded sampling and its errors, with
// the stories260K tokenizer (tok512.bin: BOS 1, EOS 2).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "io/io_test_util.h"
#include "stepdown/core/error.h"
#include "stepdown/core/sha256.h"
#include "stepdown/io/model_file.h"
#include "stepdown/quant/calibration_data.h"
#include "test_paths.h"

namespace stepdown::quant {
namespace {

std::filesystem::path stories_dir() { return test::shared_dir() / "models" / "stories260K"; }

std::unique_ptr<text::Tokenizer> stories_tokenizer() {
  return text::load_llama2c_tokenizer(stories_dir() / "tok512.bin");
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// A few hundred words of simple prose, different for each `variant`.
std::string story(int variant) {
  static const char* names[] = {"Tim", "Lily", "Sam", "Anna", "Ben"};
  static const char* things[] = {"ball", "cat", "tree", "boat", "cake"};
  std::string text;
  for (int i = 0; i < 12; ++i) {
    text += fmt::format("{} saw a big {} in the park. ", names[(variant + i) % 5], things[(variant * 3 + i) % 5]);
    text += fmt::format("The {} was red and happy, so {} played with it all day. ", things[(i + 2) % 5],
                        names[(variant + 2 * i) % 5]);
  }
  return text;
}

std::string read_whole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(CalibrationFile, PlainTextIsOneDocument) {
  test::ScratchDir dir("calib_text");
  write_text(dir / "c.txt", story(0) + "\n\n" + story(1));
  const CalibrationFile file = read_calibration_file(dir / "c.txt");
  EXPECT_EQ(file.kind, CalibrationFileKind::kText);
  ASSERT_EQ(file.documents.size(), 1u);
  EXPECT_EQ(file.documents[0].text, story(0) + "\n\n" + story(1));
  EXPECT_EQ(file.sha256.size(), 64u);
}

TEST(CalibrationFile, TrafficLinesKeepStratumAndReference) {
  test::ScratchDir dir("calib_traffic");
  write_text(dir / "t.jsonl",
             "{\"prompt\": \"Tell a story.\", \"stratum\": \"short\"}\n"
             "\n"
             "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"reference\": \"Hello!\"}\n"
             "{\"prompt\": \"Q: \", \"reference\": \"A.\", \"stratum\": \"short\"}\n");
  const CalibrationFile file = read_calibration_file(dir / "t.jsonl");
  EXPECT_EQ(file.kind, CalibrationFileKind::kTraffic);
  ASSERT_EQ(file.documents.size(), 3u);
  EXPECT_EQ(file.documents[0].text, "Tell a story.");
  EXPECT_EQ(file.documents[0].stratum, "short");
  EXPECT_EQ(file.documents[1].line, 3);
  ASSERT_EQ(file.documents[1].messages.size(), 2u);
  EXPECT_EQ(file.documents[1].messages[1].role, "assistant");
  EXPECT_EQ(file.documents[1].messages[1].content, "Hello!");
  EXPECT_EQ(file.documents[2].text, "Q: A.");
}

TEST(CalibrationFile, EmptyFileIsRejected) {
  test::ScratchDir dir("calib_empty");
  write_text(dir / "e.txt", " \n\n");
  EXPECT_THROW(read_calibration_file(dir / "e.txt"), InvalidArgument);
}

TEST(CalibrationFile, BadTrafficLineNamesItsNumber) {
  test::ScratchDir dir("calib_badline");
  write_text(dir / "b.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": 3}\n");
  try {
    read_calibration_file(dir / "b.jsonl");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("b.jsonl:3:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'prompt'"), std::string::npos) << e.what();
  }
}

TEST(CalibrationFile, InvalidJsonLineNamesItsNumber) {
  test::ScratchDir dir("calib_badjson");
  write_text(dir / "b.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"\n");
  try {
    read_calibration_file(dir / "b.jsonl");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("b.jsonl:2:"), std::string::npos) << e.what();
  }
}

TEST(CalibrationFile, BinaryFileIsNeitherKind) {
  test::ScratchDir dir("calib_binary");
  write_text(dir / "b.bin", std::string("abc\0def", 7));
  EXPECT_THROW(read_calibration_file(dir / "b.bin"), FormatError);
  write_text(dir / "c.bin", "abc\xff\xfe");
  EXPECT_THROW(read_calibration_file(dir / "c.bin"), FormatError);
}

TEST(CalibrationSample, SameSeedGivesSameTokens) {
  test::ScratchDir dir("calib_seed");
  write_text(dir / "c.txt", story(0) + story(1) + story(2));
  const auto tokenizer = stories_tokenizer();
  const CalibrationFile file = read_calibration_file(dir / "c.txt");
  const auto documents = tokenize_documents(file, *tokenizer, nullptr);

  const CalibrationData a = sample_calibration(file, documents, *tokenizer, {8, 32, 7});
  const CalibrationData b = sample_calibration(file, documents, *tokenizer, {8, 32, 7});
  const CalibrationData c = sample_calibration(file, documents, *tokenizer, {8, 32, 8});
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens_sha256, b.tokens_sha256);
  EXPECT_NE(a.tokens, c.tokens);
  EXPECT_NE(a.tokens_sha256, c.tokens_sha256);
  EXPECT_EQ(a.file_sha256, c.file_sha256);
  ASSERT_EQ(a.tokens.size(), 8u * 32u);
}

TEST(CalibrationSample, WindowsComeFromTheStreamWithBosFirst) {
  test::ScratchDir dir("calib_windows");
  write_text(dir / "c.txt", story(3) + story(4));
  const auto tokenizer = stories_tokenizer();
  const CalibrationFile file = read_calibration_file(dir / "c.txt");
  const auto documents = tokenize_documents(file, *tokenizer, nullptr);
  ASSERT_EQ(documents.size(), 1u);
  std::vector<text::TokenId> stream = documents[0];
  stream.push_back(2);  // EOS closes the document

  const CalibrationData data = sample_calibration(file, documents, *tokenizer, {5, 24, 1});
  for (int64_t s = 0; s < data.samples; ++s) {
    const auto seq = data.sequence(s);
    EXPECT_EQ(seq[0], 1) << "sequence " << s;
    // Every window after its first token is a contiguous run of the stream.
    const auto found = std::search(stream.begin(), stream.end(), seq.begin() + 1, seq.end());
    EXPECT_NE(found, stream.end()) << "sequence " << s;
  }
  EXPECT_EQ(data.stats.stream_tokens, static_cast<int64_t>(stream.size()));
  EXPECT_GT(data.stats.coverage, 0.0);
  EXPECT_LE(data.stats.coverage, 1.0);
}

TEST(CalibrationSample, TooFewTokensSaysHowMany) {
  test::ScratchDir dir("calib_short");
  write_text(dir / "c.txt", "Tim saw a cat.");
  const auto tokenizer = stories_tokenizer();
  const CalibrationFile file = read_calibration_file(dir / "c.txt");
  const auto documents = tokenize_documents(file, *tokenizer, nullptr);
  const size_t found = documents[0].size() + 1;
  try {
    sample_calibration(file, documents, *tokenizer, {4, 512, 0});
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("gives {} tokens", found)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--calib-seq-len 512"), std::string::npos) << e.what();
  }
}

TEST(CalibrationSample, NonPositiveSizesAreRejected) {
  test::ScratchDir dir("calib_sizes");
  write_text(dir / "c.txt", story(0));
  const auto tokenizer = stories_tokenizer();
  const CalibrationFile file = read_calibration_file(dir / "c.txt");
  const auto documents = tokenize_documents(file, *tokenizer, nullptr);
  EXPECT_THROW(sample_calibration(file, documents, *tokenizer, {0, 16, 0}), InvalidArgument);
  EXPECT_THROW(sample_calibration(file, documents, *tokenizer, {4, 0, 0}), InvalidArgument);
}

TEST(CalibrationTokenize, MessagesUseTheChatTemplate) {
  test::ScratchDir dir("calib_chat");
  write_text(dir / "t.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"Tim saw a cat.\"}]}\n");
  const auto tokenizer = stories_tokenizer();
  const CalibrationFile file = read_calibration_file(dir / "t.jsonl");
  EXPECT_THROW(tokenize_documents(file, *tokenizer, nullptr), InvalidArgument);

  const auto chatml = text::chat_template_by_name("chatml");
  const auto documents = tokenize_documents(file, *tokenizer, chatml.get());
  const std::string rendered = chatml->render(file.documents[0].messages, true);
  ASSERT_EQ(documents.size(), 1u);
  EXPECT_EQ(documents[0], tokenizer->encode(rendered, false));
}

TEST(CalibrationLoad, StoriesModelRecordsHashesAndStrata) {
  test::ScratchDir dir("calib_load");
  std::string lines;
  for (int i = 0; i < 6; ++i) {
    nlohmann::json line = {{"prompt", story(i)}, {"stratum", i % 3 == 0 ? "a" : "b"}};
    lines += line.dump() + "\n";
  }
  write_text(dir / "t.jsonl", lines);
  io::OpenOptions open;
  open.tokenizer_path = stories_dir() / "tok512.bin";
  const io::ModelFile model = io::open_model_file(stories_dir() / "stories260K.bin", open);
  const CalibrationData data = load_calibration_data(model, dir / "t.jsonl", {4, 64, 3});
  EXPECT_EQ(data.kind, CalibrationFileKind::kTraffic);
  EXPECT_EQ(data.stats.documents, 6);
  EXPECT_EQ(data.stats.strata.at("a"), 2);
  EXPECT_EQ(data.stats.strata.at("b"), 4);
  EXPECT_EQ(data.file_sha256, sha256_hex(read_whole(dir / "t.jsonl")));
  const nlohmann::json json = data.to_json();
  EXPECT_EQ(json["samples"], 4);
  EXPECT_EQ(json["seq_len"], 64);
  EXPECT_EQ(json["seed"], 3);
  EXPECT_EQ(json["kind"], "traffic");
}

}  // namespace
}  // namespace stepdown::quant
