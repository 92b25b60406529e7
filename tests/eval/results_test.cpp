// Tests of results.json: round trip, aggregates, and errors that name the file and field.
#include "stepdown/eval/results.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"

namespace stepdown::eval {
namespace {

Results sample_results() {
  Results results;
  results.tool_version = "0.1.0";
  results.model_id = "stories260K.bin";
  results.model_sha256 = "ab12";
  results.suite_path = "suite.jsonl";
  results.suite_sha256 = "cd34";
  results.items = {
      {"a", "faq", "hello", {{"rougeL", 0.5}, {"exact_match", 1.0}}, 10, 3, 12.5},
      {"b", "faq", "w\xc3\xb6rld", {{"rougeL", 0.25}}, 11, 4, 13.0},
      {"c", "code", "def f(): pass", {{"pass_at_k", 1.0}}, 20, 9, 40.0},
  };
  aggregate(results);
  return results;
}

std::string sample_text() { return format_results(sample_results()); }

// Applies `edit` to the sample's JSON and returns the parse error message.
template <class Edit>
std::string error_after(Edit edit) {
  nlohmann::json root = nlohmann::json::parse(sample_text());
  edit(root);
  try {
    parse_results(root.dump(), "cand.json");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Results, AggregatesPerStratumAndOverall) {
  const Results results = sample_results();
  ASSERT_EQ(results.strata.size(), 2u);
  const Aggregate& faq = results.strata.at("faq");
  EXPECT_EQ(faq.n, 2);
  EXPECT_EQ(faq.metrics.at("rougeL").n, 2);
  EXPECT_DOUBLE_EQ(faq.metrics.at("rougeL").mean, 0.375);
  EXPECT_EQ(faq.metrics.at("exact_match").n, 1);
  EXPECT_DOUBLE_EQ(faq.metrics.at("exact_match").mean, 1.0);
  EXPECT_EQ(results.overall.n, 3);
  EXPECT_EQ(results.overall.metrics.at("pass_at_k").n, 1);
  EXPECT_DOUBLE_EQ(results.overall.metrics.at("rougeL").mean, 0.375);
}

TEST(Results, RoundTripsThroughText) {
  const Results written = sample_results();
  const Results read = parse_results(format_results(written), "r.json");
  EXPECT_EQ(read.tool_version, "0.1.0");
  EXPECT_EQ(read.model_id, "stories260K.bin");
  EXPECT_EQ(read.suite_sha256, "cd34");
  ASSERT_EQ(read.items.size(), 3u);
  EXPECT_EQ(read.items[1].output, "w\xc3\xb6rld");
  EXPECT_EQ(read.items[2].stratum, "code");
  EXPECT_EQ(read.items[0].scores, written.items[0].scores);
  EXPECT_EQ(read.items[0].prompt_tokens, 10);
  EXPECT_EQ(read.items[0].output_tokens, 3);
  EXPECT_DOUBLE_EQ(read.items[0].latency_ms, 12.5);
}

TEST(Results, WriteIsAtomicAndReadable) {
  const auto dir = std::filesystem::temp_directory_path() / "stepdown_results_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "results.json";
  write_results(path, sample_results());
  EXPECT_EQ(read_results(path).items.size(), 3u);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename(), "results.json") << "temporary file left behind";
  }
  std::filesystem::remove_all(dir);
}

TEST(Results, WriteRejectsNonFiniteScore) {
  Results results = sample_results();
  results.items[0].scores["rougeL"] = std::nan("");
  const auto path = std::filesystem::temp_directory_path() / "stepdown_nan_results.json";
  EXPECT_THROW(write_results(path, results), InvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Results, MissingFieldNamesPath) {
  const std::string message = error_after([](nlohmann::json& r) { r["items"][1].erase("latency_ms"); });
  EXPECT_NE(message.find("cand.json"), std::string::npos) << message;
  EXPECT_NE(message.find("items[1].latency_ms"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

TEST(Results, WrongTypeNamesPathAndTypes) {
  const std::string message = error_after([](nlohmann::json& r) { r["items"][2]["scores"]["pass_at_k"] = "yes"; });
  EXPECT_NE(message.find("items[2].scores.pass_at_k"), std::string::npos) << message;
  EXPECT_NE(message.find("expected a number, found a string"), std::string::npos) << message;
}

TEST(Results, NullScoreIsRejected) {
  const std::string message = error_after([](nlohmann::json& r) { r["items"][0]["scores"]["rougeL"] = nullptr; });
  EXPECT_NE(message.find("items[0].scores.rougeL"), std::string::npos) << message;
  EXPECT_NE(message.find("found null"), std::string::npos) << message;
}

TEST(Results, BareNanNamesPath) {
  // Python's json.dump writes NaN as a bare token, which is not JSON.
  std::string text = sample_text();
  const std::string target = "\"rougeL\": 0.25";
  const size_t at = text.find(target);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, target.size(), "\"rougeL\": NaN");
  try {
    parse_results(text, "py.json");
    FAIL() << "NaN accepted";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("py.json"), std::string::npos) << message;
    EXPECT_NE(message.find("items[1].scores.rougeL"), std::string::npos) << message;
    EXPECT_NE(message.find("NaN"), std::string::npos) << message;
  }
}

TEST(Results, DuplicateIdIsRejected) {
  const std::string message = error_after([](nlohmann::json& r) { r["items"][2]["id"] = "a"; });
  EXPECT_NE(message.find("items[2].id"), std::string::npos) << message;
  EXPECT_NE(message.find("duplicate"), std::string::npos) << message;
}

TEST(Results, StaleAggregateIsRejected) {
  const std::string message =
      error_after([](nlohmann::json& r) { r["strata"]["faq"]["metrics"]["rougeL"]["mean"] = 0.9; });
  EXPECT_NE(message.find("strata.faq.metrics.rougeL.mean"), std::string::npos) << message;
}

TEST(Results, WrongFormatVersionIsRejected) {
  const std::string message = error_after([](nlohmann::json& r) { r["format_version"] = 7; });
  EXPECT_NE(message.find("format_version"), std::string::npos) << message;
}

TEST(Results, TruncatedFileIsRejected) {
  const std::string text = sample_text();
  EXPECT_THROW(parse_results(text.substr(0, text.size() / 2), "cut.json"), FormatError);
}

TEST(Results, MissingFileIsIoError) {
  EXPECT_THROW(read_results("/nonexistent/results.json"), IoError);
}

}  // namespace
}  // namespace stepdown::eval
