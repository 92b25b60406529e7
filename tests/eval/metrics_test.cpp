// The metric registry and the text metrics: exact_match, f1, regex, json_valid,
// json_schema and the ROUGE wrappers.
#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/rouge.h"
#include "stepdown/eval/text_normalize.h"

namespace stepdown::eval {
namespace {

SuiteItem item_with_reference(std::string reference) {
  SuiteItem item;
  item.id = "t1";
  item.stratum = "s";
  item.prompt = "p";
  item.reference = std::move(reference);
  item.max_tokens = 16;
  return item;
}

double score(std::string_view metric, std::string_view prediction, const SuiteItem& item,
             const MetricOptions& options = {}) {
  return MetricRegistry::with_text_metrics().create(metric, options)->score(prediction, item);
}

TEST(MetricRegistry, ListsTextMetrics) {
  const std::vector<std::string> expected = {"exact_match", "f1",     "json_schema", "json_valid", "regex",
                                             "rouge1",      "rouge2", "rougeL",      "rougeLsum"};
  EXPECT_EQ(MetricRegistry::with_text_metrics().names(), expected);
}

TEST(MetricRegistry, UnknownNameListsKnownOnes) {
  const MetricRegistry registry = MetricRegistry::with_text_metrics();
  try {
    registry.create("rouge3");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown metric 'rouge3'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("exact_match, f1, json_schema"), std::string::npos) << e.what();
  }
}

TEST(MetricRegistry, AddsMetricAndRejectsDuplicate) {
  MetricRegistry registry = MetricRegistry::with_text_metrics();
  class Constant final : public Metric {
   public:
    std::string_view name() const override { return "pass_at_k"; }
    bool needs_reference() const override { return false; }
    double score(std::string_view, const SuiteItem&) const override { return 0.5; }
  };
  registry.add("pass_at_k", [](const MetricOptions&) { return std::make_unique<Constant>(); });
  EXPECT_TRUE(registry.contains("pass_at_k"));
  EXPECT_EQ(registry.create("pass_at_k")->score("x", SuiteItem{}), 0.5);
  EXPECT_THROW(registry.add("f1", [](const MetricOptions&) { return std::unique_ptr<Metric>(); }), InvalidArgument);
}

TEST(TextNormalization, SquadSteps) {
  EXPECT_EQ(normalize_text("  The Quick, brown FOX!  ", {}), "quick brown fox");
  EXPECT_EQ(normalize_text("an apple a day", {}), "apple day");
  EXPECT_EQ(normalize_text("theater anthem", {}), "theater anthem");
  EXPECT_EQ(normalize_text("Ärger\u00a0ÉTÉ", {}), "ärger été");
  EXPECT_EQ(normalize_text("a-b", {}), "ab");
}

TEST(TextNormalization, StepsCanBeTurnedOff) {
  EXPECT_EQ(normalize_text(" The cat. ", TextNormalization::none()), " The cat. ");
  EXPECT_EQ(normalize_text(" The cat. ", TextNormalization::parse("lowercase,whitespace")), "the cat.");
  EXPECT_EQ(normalize_text("The the cat", TextNormalization::parse("articles")), "The   cat");
  EXPECT_THROW(TextNormalization::parse("lowercase,stem"), InvalidArgument);
}

TEST(ExactMatch, NormalisesBothSides) {
  EXPECT_EQ(score("exact_match", "The Refund.", item_with_reference("refund")), 1.0);
  EXPECT_EQ(score("exact_match", "refunds", item_with_reference("refund")), 0.0);
  MetricOptions strict;
  strict.normalization = TextNormalization::none();
  EXPECT_EQ(score("exact_match", "The Refund.", item_with_reference("refund"), strict), 0.0);
  EXPECT_EQ(score("exact_match", "refund", item_with_reference("refund"), strict), 1.0);
}

TEST(ExactMatch, MissingReferenceNamesItem) {
  SuiteItem item = item_with_reference("x");
  item.reference.reset();
  try {
    score("exact_match", "x", item);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("item 't1': field 'reference': missing"), std::string::npos) << e.what();
  }
}

TEST(TokenF1, SquadValues) {
  // pred {cat, sat, on, mat} vs gold {cat, sat, on, red, mat}: P = 4/4, R = 4/5.
  EXPECT_DOUBLE_EQ(score("f1", "the cat sat on the mat", item_with_reference("A cat sat on a red mat")),
                   2 * 1.0 * 0.8 / 1.8);
  // A repeated token matches at most as often as the reference has it: common 1, P = 1/3, R = 1/2.
  EXPECT_DOUBLE_EQ(score("f1", "b b b", item_with_reference("b c")), 2 * (1.0 / 3) * 0.5 / (1.0 / 3 + 0.5));
  EXPECT_EQ(score("f1", "dog", item_with_reference("cat")), 0.0);
  EXPECT_EQ(score("f1", "the", item_with_reference("a")), 1.0);  // both normalise to no tokens
  EXPECT_EQ(score("f1", "the", item_with_reference("cat")), 0.0);
}

TEST(RegexMetric, FullAndSearch) {
  SuiteItem item = item_with_reference("unused");
  item.pattern = "(refund|billing)";
  EXPECT_EQ(score("regex", " refund\n", item), 1.0);
  EXPECT_EQ(score("regex", "it is refund", item), 0.0);
  item.pattern_mode = PatternMode::kSearch;
  EXPECT_EQ(score("regex", "it is refund", item), 1.0);
  EXPECT_EQ(score("regex", "shipping", item), 0.0);
  item.pattern = "(?i)^\xC3\x89T\xC3\x89$";                  // "ÉTÉ"
  EXPECT_EQ(score("regex", "\xC3\xA9t\xC3\xA9", item), 1.0);  // "été": Unicode case folding
  EXPECT_EQ(score("regex", "\xFF\xFE", item), 0.0);           // invalid UTF-8 is matched, not an error
}

TEST(RegexMetric, CheckItemNamesField) {
  const auto metric = MetricRegistry::with_text_metrics().create("regex");
  SuiteItem item = item_with_reference("x");
  EXPECT_THROW(metric->check_item(item), InvalidArgument);
  item.pattern = "(unclosed";
  try {
    metric->check_item(item);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("field 'pattern': invalid regular expression"), std::string::npos)
        << e.what();
  }
}

TEST(JsonMetrics, ValidAndSchema) {
  SuiteItem item = item_with_reference("");
  EXPECT_EQ(score("json_valid", " {\"a\": 1}\n", item), 1.0);
  EXPECT_EQ(score("json_valid", "```json\n{\"a\": 1}\n```", item), 0.0);
  EXPECT_EQ(score("json_valid", "{\"a\": 1} extra", item), 0.0);
  EXPECT_EQ(score("json_valid", "", item), 0.0);

  item.schema = nlohmann::json::parse(R"({"type": "object", "required": ["order_id"],
      "properties": {"order_id": {"type": "string", "pattern": "^[0-9]{5}$"}}})");
  EXPECT_EQ(score("json_schema", R"({"order_id": "12345"})", item), 1.0);
  EXPECT_EQ(score("json_schema", R"({"order_id": "1234"})", item), 0.0);
  EXPECT_EQ(score("json_schema", R"({})", item), 0.0);
  EXPECT_EQ(score("json_schema", "not json", item), 0.0);
}

TEST(JsonMetrics, SchemaWithUnsupportedKeywordIsInvalid) {
  SuiteItem item = item_with_reference("");
  item.schema = nlohmann::json::parse(R"({"type": "string", "format": "email"})");
  const auto metric = MetricRegistry::with_text_metrics().create("json_schema");
  try {
    metric->check_item(item);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("field 'schema': JSON Schema keyword 'format'"), std::string::npos)
        << e.what();
  }
}

TEST(RougeMetrics, AreFMeasureAgainstReference) {
  const SuiteItem item = item_with_reference("The cats sat on the mat.\nThey were happy.");
  const std::string prediction = "the cat sat\nthey are happy";
  EXPECT_EQ(score("rouge1", prediction, item), rouge_n(*item.reference, prediction, 1, false).fmeasure);
  EXPECT_EQ(score("rouge2", prediction, item), rouge_n(*item.reference, prediction, 2, false).fmeasure);
  EXPECT_EQ(score("rougeL", prediction, item), rouge_l(*item.reference, prediction, false).fmeasure);
  EXPECT_EQ(score("rougeLsum", prediction, item), rouge_lsum(*item.reference, prediction, false).fmeasure);
  MetricOptions stemmed;
  stemmed.use_stemmer = true;
  EXPECT_EQ(score("rouge1", prediction, item, stemmed), rouge_n(*item.reference, prediction, 1, true).fmeasure);
  EXPECT_GT(score("rouge1", prediction, item, stemmed), score("rouge1", prediction, item));
}

}  // namespace
}  // namespace stepdown::eval
