// Suite JSONL: parsing every field, errors that name the file, line and field, and a
// write/read round trip.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/suite.h"

namespace stepdown::eval {
namespace {

namespace fs = std::filesystem;

class SuiteFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stepdown_suite_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& text) {
    const fs::path path = dir_ / "suite.jsonl";
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // The FormatError message of reading `text`, or "" when it reads.
  std::string read_error(const std::string& text) {
    try {
      read_suite(write(text), registry_);
    } catch (const FormatError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  MetricRegistry registry_ = MetricRegistry::with_text_metrics();
};

constexpr const char* kValidSuite =
    R"jsonl({"id": "c1", "stratum": "classification", "prompt": "Classify: my card was charged twice", "metric": "regex", "pattern": "billing|refund", "max_tokens": 8}
{"id": "e1", "stratum": "extraction", "messages": [{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": "Order 12345 is late"}], "metric": ["json_valid", "json_schema"], "schema": {"type": "object", "required": ["order_id"]}, "max_tokens": 32}

{"id": "s1", "stratum": "summarization", "prompt": "Summarize: ...", "reference": "A short summary.", "reference_source": "golden", "metric": ["rougeL", "rougeLsum"], "max_tokens": 48, "metadata": {"source": "chat"}}
{"id": "q1", "stratum": "short_answer", "prompt": "How long do refunds take?", "reference": "5 business days", "metric": "f1", "max_tokens": 16}
{"id": "k1", "stratum": "code", "prompt": "Write add(a, b)", "metric": "rougeL", "tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"], "rubric": "Correct and short.", "max_tokens": 48, "pattern": "def add", "pattern_mode": "search"}
)jsonl";

TEST_F(SuiteFile, ReadsEveryField) {
  const std::vector<SuiteItem> items = read_suite(write(kValidSuite), registry_);
  ASSERT_EQ(items.size(), 5u);

  EXPECT_EQ(items[0].id, "c1");
  EXPECT_EQ(items[0].stratum, "classification");
  EXPECT_EQ(items[0].prompt, "Classify: my card was charged twice");
  EXPECT_EQ(items[0].metrics, std::vector<std::string>{"regex"});
  EXPECT_EQ(items[0].pattern, "billing|refund");
  EXPECT_EQ(items[0].pattern_mode, PatternMode::kFull);
  EXPECT_EQ(items[0].max_tokens, 8);
  EXPECT_FALSE(items[0].reference);

  ASSERT_EQ(items[1].messages.size(), 2u);
  EXPECT_EQ(items[1].messages[0].role, "system");
  EXPECT_EQ(items[1].prompt_text(), "Order 12345 is late");
  EXPECT_EQ(items[1].metrics, (std::vector<std::string>{"json_valid", "json_schema"}));
  EXPECT_EQ(items[1].schema->at("required")[0], "order_id");

  EXPECT_EQ(items[2].reference, "A short summary.");
  EXPECT_EQ(items[2].reference_source, ReferenceSource::kGolden);
  EXPECT_EQ(items[2].metadata.at("source"), "chat");

  EXPECT_EQ(items[3].reference_source, ReferenceSource::kHuman);  // a reference with no source is a person's

  EXPECT_EQ(items[4].tests.size(), 2u);
  EXPECT_EQ(items[4].rubric, "Correct and short.");
  EXPECT_EQ(items[4].pattern_mode, PatternMode::kSearch);
}

TEST_F(SuiteFile, RoundTripsThroughWriter) {
  const std::vector<SuiteItem> items = read_suite(write(kValidSuite), registry_);
  const fs::path copy = dir_ / "copy.jsonl";
  write_suite(copy, items);
  const std::vector<SuiteItem> again = read_suite(copy, registry_);
  ASSERT_EQ(again.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(suite_item_to_json(again[i]), suite_item_to_json(items[i])) << "item " << i;
  }
  // Fields come out in the documented order.
  std::ifstream in(copy);
  std::string first_line;
  std::getline(in, first_line);
  EXPECT_EQ(first_line.rfind(R"({"id":"c1","stratum":"classification","prompt":)", 0), 0u) << first_line;
  EXPECT_FALSE(fs::exists(dir_ / "copy.jsonl.tmp"));
}

TEST_F(SuiteFile, MalformedJsonNamesLine) {
  const std::string error = read_error(
      R"({"id": "a", "stratum": "s", "prompt": "p", "metric": "f1", "max_tokens": 4})"
      "\n{\"id\": \"b\", \"stratum\": \n");
  EXPECT_NE(error.find("suite.jsonl:2: invalid JSON"), std::string::npos) << error;
}

TEST_F(SuiteFile, MissingFieldNamesLineAndField) {
  EXPECT_NE(read_error(R"({"id": "a", "prompt": "p", "metric": "f1", "max_tokens": 4})").find(
                "suite.jsonl:1: field 'stratum': missing"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"id": "a", "stratum": "s", "metric": "f1", "max_tokens": 4})").find(
                "suite.jsonl:1: field 'prompt': missing"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"id": "a", "stratum": "s", "prompt": "p", "metric": "f1"})").find(
                "field 'max_tokens': missing"),
            std::string::npos);
}

TEST_F(SuiteFile, WrongTypeNamesExpectedAndFound) {
  const std::string error =
      read_error(R"({"id": "a", "stratum": "s", "prompt": "p", "metric": "f1", "max_tokens": "64"})");
  EXPECT_NE(error.find("suite.jsonl:1: field 'max_tokens': expected an integer from 1 to 1000000, found string \"64\""),
            std::string::npos)
      << error;
  EXPECT_NE(read_error(R"({"id": "a", "stratum": "s", "messages": [{"role": "bot", "content": "x"}], "metric": "f1", "max_tokens": 4})")
                .find("field 'messages[0].role': expected system, user or assistant"),
            std::string::npos);
  EXPECT_NE(read_error(R"({"id": "a", "stratum": "s", "prompt": "p", "metric": 3, "max_tokens": 4})")
                .find("field 'metric': expected a metric name"),
            std::string::npos);
}

TEST_F(SuiteFile, UnknownMetricListsKnownOnes) {
  const std::string error =
      read_error(R"({"id": "a", "stratum": "s", "prompt": "p", "metric": ["f1", "bleu"], "max_tokens": 4})");
  EXPECT_NE(error.find("suite.jsonl:1: field 'metric': unknown metric 'bleu'; known metrics: exact_match"),
            std::string::npos)
      << error;
}

TEST_F(SuiteFile, MetricArgumentsAreChecked) {
  EXPECT_NE(read_error(R"({"id": "a", "stratum": "s", "prompt": "p", "metric": "regex", "max_tokens": 4})")
                .find("suite.jsonl:1: metric regex: field 'pattern': missing"),
            std::string::npos);
  const std::string error = read_error(
      R"({"id": "a", "stratum": "s", "prompt": "p", "metric": "json_schema", "schema": {"type": "object", "dependentRequired": {}}, "max_tokens": 4})");
  EXPECT_NE(error.find("metric json_schema: field 'schema': JSON Schema keyword 'dependentRequired'"), std::string::npos)
      << error;
}

TEST_F(SuiteFile, DuplicateIdNamesFirstLine) {
  const std::string error = read_error(
      R"({"id": "a", "stratum": "s", "prompt": "p", "metric": "f1", "max_tokens": 4})"
      "\n"
      R"({"id": "b", "stratum": "s", "prompt": "p", "metric": "f1", "max_tokens": 4})"
      "\n"
      R"({"id": "a", "stratum": "s", "prompt": "q", "metric": "f1", "max_tokens": 4})");
  EXPECT_NE(error.find("suite.jsonl:3: field 'id': duplicate id 'a', first used on line 1"), std::string::npos)
      << error;
}

TEST_F(SuiteFile, UnknownFieldIsRejected) {
  const std::string error = read_error(
      R"({"id": "a", "stratum": "s", "prompt": "p", "metric": "f1", "max_tokens": 4, "refrence": "x"})");
  EXPECT_NE(error.find("field 'refrence': unknown field"), std::string::npos) << error;
}

TEST_F(SuiteFile, PromptAndMessagesAreExclusive) {
  const std::string error = read_error(
      R"({"id": "a", "stratum": "s", "prompt": "p", "messages": [{"role": "user", "content": "x"}], "metric": "f1", "max_tokens": 4})");
  EXPECT_NE(error.find("expected one of them, found both"), std::string::npos) << error;
}

TEST_F(SuiteFile, ReferenceSourceNeedsReference) {
  const std::string error = read_error(
      R"({"id": "a", "stratum": "s", "prompt": "p", "reference_source": "golden", "metric": "f1", "max_tokens": 4})");
  EXPECT_NE(error.find("field 'reference_source': set, but field 'reference' is missing"), std::string::npos) << error;
}

TEST_F(SuiteFile, MissingFileIsIoError) {
  EXPECT_THROW(read_suite(dir_ / "absent.jsonl", registry_), IoError);
}

TEST(SuiteItemParse, TrafficNeedsOnlyTheRequest) {
  const SuiteItem item = parse_suite_item(nlohmann::json::parse(R"({"prompt": "hi", "user": 7, "ts": "x"})"),
                                          ItemSchema::kTraffic);
  EXPECT_EQ(item.prompt, "hi");
  EXPECT_TRUE(item.id.empty());
  EXPECT_TRUE(item.metrics.empty());
  EXPECT_THROW(parse_suite_item(nlohmann::json::parse(R"({"prompt": 5})"), ItemSchema::kTraffic), FormatError);
}

}  // namespace
}  // namespace stepdown::eval
