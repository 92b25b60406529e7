// Suite JSONL: parsing every field, errors that name the file, line and field, and a
// write/read round trip.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/suite.h"
#include "stepdown/eval/suite_build.h"
#include "test_paths.h"

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

TEST(NearDuplicates, IdenticalAfterNormalisation) {
  const std::vector<std::string> texts = {"How long do refunds take?", "how long do REFUNDS take??",
                                          "How long does shipping take?", "  How long   do refunds take "};
  EXPECT_EQ(find_near_duplicates(texts, 0.8), (std::vector<size_t>{1, 3}));
}

TEST(NearDuplicates, ThresholdIsInclusiveAndExact) {
  // 10 words give 8 shingles; changing the last word shares 7 of them: Jaccard 7 / 9.
  const std::vector<std::string> texts = {"w1 w2 w3 w4 w5 w6 w7 w8 w9 w10", "w1 w2 w3 w4 w5 w6 w7 w8 w9 x"};
  EXPECT_TRUE(find_near_duplicates(texts, 0.8).empty());
  EXPECT_EQ(find_near_duplicates(texts, 7.0 / 9.0), (std::vector<size_t>{1}));
  EXPECT_EQ(find_near_duplicates(texts, 0.5), (std::vector<size_t>{1}));
  EXPECT_THROW(find_near_duplicates(texts, 0.0), InvalidArgument);
}

TEST(NearDuplicates, ShortTextsCompareWhole) {
  const std::vector<std::string> texts = {"refund", "Refund!", "refund please", "r\xC3\xA9sum\xC3\xA9", "R\xC3\x89SUM\xC3\x89"};
  EXPECT_EQ(find_near_duplicates(texts, 0.8), (std::vector<size_t>{1, 4}));
}

TEST(NearDuplicates, ManyDistinctTextsAreKept) {
  std::vector<std::string> texts;
  for (int i = 0; i < 2000; ++i) texts.push_back(fmt::format("request number {} about order {}", i, i * 7919 % 10007));
  EXPECT_TRUE(find_near_duplicates(texts, 0.8).empty());
  texts.push_back(texts[1234]);
  EXPECT_EQ(find_near_duplicates(texts, 0.8), (std::vector<size_t>{2000}));
}

class SuiteBuild : public SuiteFile {
 protected:
  // `a` gets 10 requests, `b` 3 and `c` 5, plus one near-duplicate in `a`.
  fs::path write_traffic() {
    std::string text;
    for (int i = 0; i < 10; ++i) {
      text += fmt::format(R"({{"prompt": "alpha request {} about topic {}", "stratum": "a", "user": "u{}"}})", i,
                          i * 13, i) + "\n";
    }
    text += R"({"prompt": "Alpha request 3 about topic 39!", "stratum": "a"})" "\n";
    for (int i = 0; i < 3; ++i) {
      text += fmt::format(R"({{"messages": [{{"role": "user", "content": "bravo {}"}}], "stratum": "b"}})", i) + "\n";
    }
    for (int i = 0; i < 5; ++i) {
      text += fmt::format(R"({{"prompt": "charlie {}", "stratum": "c", "metric": "f1", "max_tokens": 9}})", i) + "\n";
    }
    const fs::path path = dir_ / "traffic.jsonl";
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  SuiteBuildOptions options(size_t per_stratum, uint64_t seed) {
    SuiteBuildOptions build_options;
    build_options.per_stratum = per_stratum;
    build_options.seed = seed;
    build_options.default_metrics = {"rougeL"};
    return build_options;
  }

  static std::vector<std::string> ids(const SuiteBuildResult& result) {
    std::vector<std::string> out;
    for (const SuiteItem& item : result.items) out.push_back(item.id);
    return out;
  }
};

TEST_F(SuiteBuild, SamplesPerStratumAndKeepsSmallStrataWhole) {
  const SuiteBuildResult result = build_suite(write_traffic(), options(5, 42), registry_);
  EXPECT_EQ(result.requests, 19u);
  EXPECT_EQ(result.duplicates, 1u);
  ASSERT_EQ(result.strata.size(), 3u);

  EXPECT_EQ(result.strata[0].stratum, "a");
  EXPECT_EQ(result.strata[0].requests, 11u);
  EXPECT_EQ(result.strata[0].duplicates, 1u);
  EXPECT_EQ(result.strata[0].selected, 5u);
  EXPECT_FALSE(result.strata[0].kept_whole);

  EXPECT_EQ(result.strata[1].stratum, "b");
  EXPECT_EQ(result.strata[1].selected, 3u);
  EXPECT_TRUE(result.strata[1].kept_whole);

  EXPECT_EQ(result.strata[2].selected, 5u);
  EXPECT_FALSE(result.strata[2].kept_whole);

  ASSERT_EQ(result.items.size(), 13u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(result.items[i].stratum, "a");
  EXPECT_EQ(result.items[5].id, "b-12");  // STRATUM-LINE when the traffic has no id
  EXPECT_EQ(result.items[5].prompt_text(), "bravo 0");
  EXPECT_EQ(result.items[5].metrics, std::vector<std::string>{"rougeL"});
  EXPECT_EQ(result.items[5].max_tokens, 128);
  EXPECT_EQ(result.items[8].metrics, std::vector<std::string>{"f1"});
  EXPECT_EQ(result.items[8].max_tokens, 9);
  for (const SuiteItem& item : result.items) EXPECT_NE(item.id, "a-11");  // the near-duplicate line
}

TEST_F(SuiteBuild, SameSeedSameSuite) {
  const fs::path traffic = write_traffic();
  const std::vector<std::string> first = ids(build_suite(traffic, options(4, 7), registry_));
  EXPECT_EQ(ids(build_suite(traffic, options(4, 7), registry_)), first);
  bool any_differs = false;
  for (uint64_t seed = 8; seed < 12; ++seed) any_differs = any_differs || ids(build_suite(traffic, options(4, seed), registry_)) != first;
  EXPECT_TRUE(any_differs);
}

TEST_F(SuiteBuild, RulesAssignInOrderWithDefault) {
  const fs::path rules = dir_ / "rules.yaml";
  std::ofstream(rules) << "- stratum: bravo\n  regex: \"^bravo\"\n- stratum: any_a\n  regex: \"(?i)alpha\"\n"
                          "- stratum: never\n  regex: \"alpha\"\n";
  SuiteBuildOptions build_options = options(100, 1);
  build_options.rules = read_stratum_rules(rules);
  build_options.default_stratum = "rest";
  const SuiteBuildResult result = build_suite(write_traffic(), build_options, registry_);
  ASSERT_EQ(result.strata.size(), 3u);
  EXPECT_EQ(result.strata[0].stratum, "any_a");
  EXPECT_EQ(result.strata[0].selected, 10u);
  EXPECT_EQ(result.strata[1].stratum, "bravo");
  EXPECT_EQ(result.strata[1].selected, 3u);
  EXPECT_EQ(result.strata[2].stratum, "rest");
  EXPECT_EQ(result.strata[2].selected, 5u);
  EXPECT_EQ(result.default_stratum_requests, 5u);
}

TEST_F(SuiteBuild, StratifyByAnotherField) {
  SuiteBuildOptions build_options = options(100, 1);
  build_options.stratify_by = "user";
  const SuiteBuildResult result = build_suite(write_traffic(), build_options, registry_);
  EXPECT_EQ(result.strata.size(), 11u);  // u0..u9 and "other"
  EXPECT_EQ(result.default_stratum_requests, 9u);
  EXPECT_EQ(result.strata.back().stratum, "u9");
}

TEST_F(SuiteBuild, MissingMetricNamesLine) {
  SuiteBuildOptions build_options = options(5, 1);
  build_options.default_metrics.clear();
  try {
    build_suite(write_traffic(), build_options, registry_);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("traffic.jsonl:1: field 'metric': missing"), std::string::npos) << e.what();
  }
}

TEST_F(SuiteBuild, UnknownDefaultMetricIsInvalid) {
  SuiteBuildOptions build_options = options(5, 1);
  build_options.default_metrics = {"bleu"};
  EXPECT_THROW(build_suite(write_traffic(), build_options, registry_), InvalidArgument);
}

TEST_F(SuiteBuild, RulesFileErrorsNameEntry) {
  const fs::path rules = dir_ / "rules.yaml";
  std::ofstream(rules) << "- stratum: a\n  regex: \"x\"\n- stratum: b\n";
  try {
    read_stratum_rules(rules);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("rules.yaml:3: rule 2: key 'regex': missing"), std::string::npos) << e.what();
  }
  std::ofstream(rules, std::ios::trunc) << "- stratum: a\n  regex: \"(\"\n";
  EXPECT_THROW(read_stratum_rules(rules), FormatError);
  std::ofstream(rules, std::ios::trunc) << "stratum: a\n";
  EXPECT_THROW(read_stratum_rules(rules), FormatError);
}

// pass_at_k comes from the code sandbox layer; this stand-in only lets suites that name
// it be read without running code.
class CodeMetricStandIn final : public Metric {
 public:
  std::string_view name() const override { return "pass_at_k"; }
  bool needs_reference() const override { return false; }
  double score(std::string_view, const SuiteItem&) const override { throw Unsupported("stand-in"); }
};

TEST_F(SuiteFile, DocumentationExampleReads) {
  std::ifstream doc(test::source_dir() / "docs" / "suite-format.md");
  ASSERT_TRUE(doc);
  std::string line;
  std::string example;
  bool inside = false;
  while (std::getline(doc, line)) {
    if (line == "```jsonl") {
      inside = true;
    } else if (inside && line == "```") {
      break;
    } else if (inside) {
      example += line + "\n";
    }
  }
  registry_.add("pass_at_k", [](const MetricOptions&) { return std::make_unique<CodeMetricStandIn>(); });
  const std::vector<SuiteItem> items = read_suite(write(example), registry_);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[1].schema->at("properties").at("order_id").at("pattern"), "^[0-9]{5}$");
  EXPECT_EQ(items[2].reference_source, ReferenceSource::kGolden);
}

TEST_F(SuiteBuild, DemoTrafficBuilds) {
  registry_.add("pass_at_k", [](const MetricOptions&) { return std::make_unique<CodeMetricStandIn>(); });
  SuiteBuildOptions build_options;
  build_options.per_stratum = 10;
  build_options.seed = 1;
  const SuiteBuildResult result =
      build_suite(test::source_dir() / "examples" / "traffic-demo.jsonl", build_options, registry_);
  EXPECT_EQ(result.requests, 60u);
  EXPECT_EQ(result.duplicates, 2u);
  ASSERT_EQ(result.strata.size(), 5u);
  for (const StratumSummary& stratum : result.strata) {
    EXPECT_EQ(stratum.selected, 10u) << stratum.stratum;
    EXPECT_EQ(stratum.requests, 12u) << stratum.stratum;
  }
}

std::string run_command(const std::string& command, int* exit_code) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

TEST_F(SuiteBuild, CommandWritesSuiteAndSummary) {
  const fs::path traffic = write_traffic();
  const std::string base = fmt::format("{} suite build --traffic {} --per-stratum 4 --seed 3 --metric rougeL",
                                       test::cli_path().string(), traffic.string());
  int exit_code = -1;
  const std::string json_output =
      run_command(base + " --json -o " + (dir_ / "one.jsonl").string() + " 2>" + (dir_ / "stderr.txt").string(),
                  &exit_code);
  ASSERT_EQ(exit_code, 0) << json_output;
  const nlohmann::json summary = nlohmann::json::parse(json_output);
  EXPECT_EQ(summary.at("selected"), 11);
  EXPECT_EQ(summary.at("duplicates"), 1);
  EXPECT_EQ(summary.at("strata")[1].at("stratum"), "b");
  EXPECT_EQ(summary.at("strata")[1].at("kept_whole"), true);

  std::ifstream stderr_file(dir_ / "stderr.txt");
  const std::string stderr_text((std::istreambuf_iterator<char>(stderr_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(stderr_text.find("stratum 'b' has 3 unique requests, fewer than the 4 requested"), std::string::npos)
      << stderr_text;
  EXPECT_NE(stderr_text.find("(fewer than --per-stratum: kept whole)"), std::string::npos) << stderr_text;

  EXPECT_EQ(read_suite(dir_ / "one.jsonl", registry_).size(), 11u);
  run_command(base + " -o " + (dir_ / "two.jsonl").string() + " 2>/dev/null", &exit_code);
  ASSERT_EQ(exit_code, 0);
  std::ifstream one(dir_ / "one.jsonl");
  std::ifstream two(dir_ / "two.jsonl");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(one), {}), std::string(std::istreambuf_iterator<char>(two), {}));
}

TEST_F(SuiteBuild, CommandBuildsDemoTraffic) {
  int exit_code = -1;
  const std::string output = run_command(
      fmt::format("{} suite build --traffic {} --per-stratum 10 --seed 1 --json -o {} 2>/dev/null",
                  test::cli_path().string(), (test::source_dir() / "examples" / "traffic-demo.jsonl").string(),
                  (dir_ / "demo-suite.jsonl").string()),
      &exit_code);
  ASSERT_EQ(exit_code, 0) << output;
  const nlohmann::json summary = nlohmann::json::parse(output);
  EXPECT_EQ(summary.at("requests"), 60);
  EXPECT_EQ(summary.at("duplicates"), 2);
  EXPECT_EQ(summary.at("selected"), 50);
  ASSERT_EQ(summary.at("strata").size(), 5u);
  EXPECT_EQ(summary.at("strata")[1].at("stratum"), "code");
  EXPECT_EQ(summary.at("strata")[1].at("selected"), 10);
}

TEST_F(SuiteBuild, CommandFailsWithoutWritingOnBadLine) {
  const fs::path traffic = dir_ / "bad.jsonl";
  std::ofstream(traffic) << "{\"prompt\": \"x\"}\n{\"prompt\": 3}\n";
  int exit_code = -1;
  const std::string output = run_command(
      fmt::format("{} suite build --traffic {} --per-stratum 4 --metric f1 -o {} 2>&1", test::cli_path().string(),
                  traffic.string(), (dir_ / "out.jsonl").string()),
      &exit_code);
  EXPECT_NE(exit_code, 0);
  EXPECT_NE(output.find("bad.jsonl:2: field 'prompt': expected a string, found integer 3"), std::string::npos) << output;
  EXPECT_FALSE(fs::exists(dir_ / "out.jsonl"));
}

}  // namespace
}  // namespace stepdown::eval
