// The eval runner with a fake Engine: requests built from items, per-item scores and
// per-stratum aggregates, goldens that keep human references, errors that name the item,
// and the SHA-256 digests recorded in results.json (FIPS 180-4 test vectors).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/eval_runner.h"

namespace stepdown::eval {
namespace {

// Replies with the prompt reversed, or throws for ids in `failing`.
class EchoEngine final : public engine::Engine {
 public:
  std::string describe() const override { return "echo"; }
  engine::GenerationResult generate(const engine::GenerationRequest& request) override {
    requests.push_back(request);
    if (request.id == failing) raise<Error>("request '{}' failed: the fake engine refuses it", request.id);
    engine::GenerationResult result;
    result.id = request.id;
    const std::string& source = request.messages.empty() ? request.prompt : request.messages.back().content;
    result.text = std::string(source.rbegin(), source.rend());
    result.prompt_tokens = 3;
    result.completion_tokens = 2;
    result.total_ms = 1.5;
    result.finish_reason = "stop";
    return result;
  }
  std::vector<engine::GenerationRequest> requests;
  std::string failing;
};

SuiteItem item(const std::string& id, const std::string& stratum, const std::string& prompt,
               std::optional<std::string> reference, ReferenceSource source) {
  SuiteItem out;
  out.id = id;
  out.stratum = stratum;
  out.prompt = prompt;
  out.reference = std::move(reference);
  out.reference_source = source;
  out.metrics = {"exact_match"};
  out.max_tokens = 7;
  return out;
}

TEST(EvalRunner, RequestsAreGreedyWithTheItemsLimits) {
  SuiteItem chat = item("c", "s", "", std::nullopt, ReferenceSource::kNone);
  chat.messages = {{"system", "Be brief."}, {"user", "abc"}};
  const engine::GenerationRequest request = request_for(chat);
  EXPECT_EQ(request.id, "c");
  EXPECT_EQ(request.max_tokens, 7);
  EXPECT_EQ(request.temperature, 0.0f);
  ASSERT_EQ(request.messages.size(), 2u);
  EXPECT_EQ(request.messages[1].role, "user");
  EXPECT_EQ(request.messages[1].content, "abc");
}

TEST(EvalRunner, ScoresAndAggregatesPerStratum) {
  EchoEngine engine;
  const std::vector<SuiteItem> items = {item("a", "x", "abc", "cba", ReferenceSource::kGolden),
                                        item("b", "x", "abc", "nope", ReferenceSource::kGolden),
                                        item("c", "y", "xy", "yx", ReferenceSource::kHuman)};
  const Results results = run_eval(items, engine, MetricRegistry::with_text_metrics(), {});
  ASSERT_EQ(results.items.size(), 3u);
  EXPECT_EQ(results.items[0].output, "cba");
  EXPECT_DOUBLE_EQ(results.items[0].scores.at("exact_match"), 1.0);
  EXPECT_DOUBLE_EQ(results.items[1].scores.at("exact_match"), 0.0);
  EXPECT_EQ(results.items[2].prompt_tokens, 3);
  EXPECT_EQ(results.items[2].output_tokens, 2);
  EXPECT_DOUBLE_EQ(results.items[2].latency_ms, 1.5);
  EXPECT_DOUBLE_EQ(results.strata.at("x").metrics.at("exact_match").mean, 0.5);
  EXPECT_DOUBLE_EQ(results.strata.at("y").metrics.at("exact_match").mean, 1.0);
  EXPECT_EQ(results.overall.n, 3);
}

TEST(EvalRunner, GoldensKeepHumanReferences) {
  EchoEngine engine;
  const std::vector<SuiteItem> items = {item("a", "x", "abc", std::nullopt, ReferenceSource::kNone),
                                        item("b", "x", "def", "written by hand", ReferenceSource::kHuman),
                                        item("c", "x", "ghi", "old golden", ReferenceSource::kGolden)};
  size_t generated = 0;
  const std::vector<SuiteItem> golden = make_goldens(items, engine, &generated);
  EXPECT_EQ(generated, 2u);
  ASSERT_EQ(engine.requests.size(), 2u);
  EXPECT_EQ(golden[0].reference, "cba");
  EXPECT_EQ(golden[0].reference_source, ReferenceSource::kGolden);
  EXPECT_EQ(golden[1].reference, "written by hand");
  EXPECT_EQ(golden[1].reference_source, ReferenceSource::kHuman);
  EXPECT_EQ(golden[2].reference, "ihg");
  EXPECT_EQ(golden[2].reference_source, ReferenceSource::kGolden);
}

TEST(EvalRunner, FailuresNameTheItem) {
  EchoEngine engine;
  engine.failing = "b";
  const std::vector<SuiteItem> items = {item("a", "x", "abc", "cba", ReferenceSource::kGolden),
                                        item("b", "x", "abc", "cba", ReferenceSource::kGolden)};
  try {
    run_eval(items, engine, MetricRegistry::with_text_metrics(), {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
  }

  // A metric that needs a reference the item lacks.
  EchoEngine ok;
  const std::vector<SuiteItem> unreferenced = {item("q9", "x", "abc", std::nullopt, ReferenceSource::kNone)};
  try {
    run_eval(unreferenced, ok, MetricRegistry::with_text_metrics(), {});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("item 'q9': metric exact_match"), std::string::npos) << e.what();
  }
}

TEST(EvalRunner, MissingReferenceFailsBeforeGeneration) {
  EchoEngine engine;
  const std::vector<SuiteItem> items = {item("a", "x", "abc", "cba", ReferenceSource::kGolden),
                                        item("q9", "x", "abc", std::nullopt, ReferenceSource::kNone)};
  try {
    run_eval(items, engine, MetricRegistry::with_text_metrics(), {});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("stepdown suite golden"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(engine.requests.empty());
}

}  // namespace
}  // namespace stepdown::eval
