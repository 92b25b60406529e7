// The LLM judge: score and verdict parsing, rubric scoring, pairwise comparison in both
// orders with inconsistent verdicts counted, through a fake judge Engine and through
// OpenAiEngine against a fake server on loopback; a judge that is down names itself.
#include <httplib.h>

#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/engine/openai_engine.h"
#include "stepdown/eval/eval_runner.h"
#include "stepdown/eval/judge.h"

namespace stepdown::eval {
namespace {

// A judge whose reply is computed from the prompt it is sent.
class FakeJudge final : public engine::Engine {
 public:
  explicit FakeJudge(std::function<std::string(const std::string&)> reply) : reply_(std::move(reply)) {}
  std::string describe() const override { return "fake-judge"; }
  engine::GenerationResult generate(const engine::GenerationRequest& request) override {
    prompts.push_back(request.messages.at(0).content);
    ids.push_back(request.id);
    engine::GenerationResult result;
    result.id = request.id;
    result.text = reply_(request.messages.at(0).content);
    return result;
  }
  std::vector<std::string> prompts;
  std::vector<std::string> ids;

 private:
  std::function<std::string(const std::string&)> reply_;
};

SuiteItem rubric_item() {
  SuiteItem item;
  item.id = "q1";
  item.stratum = "s";
  item.prompt = "Name a primary color.";
  item.rubric = "Names red, yellow or blue.";
  item.metrics = {"judge"};
  item.max_tokens = 8;
  return item;
}

SuiteItem pairwise_item() {
  SuiteItem item = rubric_item();
  item.rubric.reset();
  item.reference = "GOLDEN-ANSWER";
  item.reference_source = ReferenceSource::kGolden;
  return item;
}

TEST(ParseRating, FindsTheScore) {
  EXPECT_EQ(parse_rating("The answer is right.\nScore: 8"), 8);
  EXPECT_EQ(parse_rating("score=10"), 10);
  EXPECT_EQ(parse_rating("**Rating:** 3"), 3);
  EXPECT_EQ(parse_rating("I would give it 7/10."), 7);
  EXPECT_EQ(parse_rating("  9 "), 9);
  // The last labelled score wins over numbers in the explanation.
  EXPECT_EQ(parse_rating("It lists 3 colors, 2 of them wrong. Score: 4"), 4);
  EXPECT_EQ(parse_rating("Score: 2\nOn reflection, Score: 5"), 5);
}

TEST(ParseRating, RejectsRepliesWithoutAScore) {
  EXPECT_THROW(parse_rating("The answer looks fine."), InvalidArgument);
  EXPECT_THROW(parse_rating("Score: 11"), InvalidArgument);
  EXPECT_THROW(parse_rating("Score: 0"), InvalidArgument);
  EXPECT_THROW(parse_rating("Score: 7.5"), InvalidArgument);
  try {
    parse_rating("no number here");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("\"no number here\""), std::string::npos) << e.what();
  }
}

TEST(ParseVerdict, FindsTheVerdict) {
  EXPECT_EQ(parse_verdict("A is correct.\nVerdict: A"), Verdict::kFirst);
  EXPECT_EQ(parse_verdict("verdict: b"), Verdict::kSecond);
  EXPECT_EQ(parse_verdict("Verdict: [tie]"), Verdict::kTie);
  EXPECT_EQ(parse_verdict("B."), Verdict::kSecond);
  EXPECT_EQ(parse_verdict("Verdict: A\nVerdict: B"), Verdict::kSecond);
  EXPECT_THROW(parse_verdict("Both are fine."), InvalidArgument);
  EXPECT_THROW(parse_verdict("Verdict: C"), InvalidArgument);
}

TEST(JudgeMetric, RubricScoreIsRescaledToUnitRange) {
  FakeJudge judge([](const std::string&) { return std::string("Good.\nScore: 10"); });
  JudgeCounters counters;
  JudgeMetric metric(judge, counters);
  EXPECT_DOUBLE_EQ(metric.score("red", rubric_item()), 1.0);
  FakeJudge low([](const std::string&) { return std::string("Score: 4"); });
  JudgeMetric low_metric(low, counters);
  EXPECT_DOUBLE_EQ(low_metric.score("green", rubric_item()), 3.0 / 9.0);
  EXPECT_EQ(counters.rubric_items.load(), 2);
  ASSERT_EQ(judge.prompts.size(), 1u);
  EXPECT_NE(judge.prompts[0].find("Names red, yellow or blue."), std::string::npos);
  EXPECT_NE(judge.prompts[0].find("red"), std::string::npos);
  EXPECT_EQ(judge.ids[0], "q1/judge-rubric");
}

// A judge that prefers whichever answer contains `better`.
std::function<std::string(const std::string&)> prefers(const std::string& better) {
  return [better](const std::string& prompt) {
    const size_t a = prompt.find("[Answer A]");
    const size_t b = prompt.find("[Answer B]");
    const std::string answer_a = prompt.substr(a, b - a);
    return std::string(answer_a.find(better) != std::string::npos ? "Verdict: A" : "Verdict: B");
  };
}

TEST(JudgeMetric, PairwiseAsksBothOrders) {
  JudgeCounters counters;
  FakeJudge candidate_wins(prefers("CANDIDATE"));
  EXPECT_DOUBLE_EQ(JudgeMetric(candidate_wins, counters).score("CANDIDATE", pairwise_item()), 1.0);
  ASSERT_EQ(candidate_wins.prompts.size(), 2u);
  // The candidate is answer A in the first prompt and answer B in the second.
  EXPECT_LT(candidate_wins.prompts[0].find("CANDIDATE"), candidate_wins.prompts[0].find("GOLDEN-ANSWER"));
  EXPECT_GT(candidate_wins.prompts[1].find("CANDIDATE"), candidate_wins.prompts[1].find("GOLDEN-ANSWER"));

  FakeJudge golden_wins(prefers("GOLDEN"));
  EXPECT_DOUBLE_EQ(JudgeMetric(golden_wins, counters).score("CANDIDATE", pairwise_item()), 0.0);
  FakeJudge ties([](const std::string&) { return std::string("Verdict: tie"); });
  EXPECT_DOUBLE_EQ(JudgeMetric(ties, counters).score("CANDIDATE", pairwise_item()), 0.5);
  EXPECT_EQ(counters.inconsistent_pairs.load(), 0);
  EXPECT_EQ(counters.pairwise_items.load(), 3);
}

TEST(JudgeMetric, PositionBiasIsCountedAsInconsistent) {
  JudgeCounters counters;
  FakeJudge always_first([](const std::string&) { return std::string("Verdict: A"); });
  EXPECT_DOUBLE_EQ(JudgeMetric(always_first, counters).score("CANDIDATE", pairwise_item()), 0.5);
  EXPECT_EQ(counters.inconsistent_pairs.load(), 1);
}

TEST(JudgeMetric, NeedsRubricOrReference) {
  JudgeCounters counters;
  FakeJudge judge([](const std::string&) { return std::string("Score: 5"); });
  SuiteItem item = rubric_item();
  item.rubric.reset();
  try {
    JudgeMetric(judge, counters).score("x", item);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("rubric"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(judge.prompts.empty());
}

TEST(JudgeMetric, ScoredThroughTheRegistryWithItemInErrors) {
  FakeJudge judge([](const std::string&) { return std::string("I cannot decide."); });
  JudgeCounters counters;
  MetricRegistry registry = MetricRegistry::with_text_metrics();
  add_judge_metric(registry, judge, counters);
  const std::vector<SuiteItem> items = {rubric_item()};
  engine::GenerationResult output;
  output.text = "red";
  const std::vector<engine::GenerationResult> outputs = {output};
  try {
    score_items(items, outputs, registry, {});
    FAIL();
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("item 'q1'"), std::string::npos) << message;
    EXPECT_NE(message.find("judge"), std::string::npos) << message;
    EXPECT_NE(message.find("no 1-10 score"), std::string::npos) << message;
  }
}

// An OpenAI-compatible judge on loopback that replies "Score: 7" to every chat request.
class FakeJudgeServer {
 public:
  FakeJudgeServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& request, httplib::Response& response) {
      bodies.push_back(nlohmann::json::parse(request.body));
      const nlohmann::json reply = {{"choices", {{{"message", {{"role", "assistant"}, {"content", "Fine.\nScore: 7"}}},
                                                  {"finish_reason", "stop"}}}},
                                    {"usage", {{"prompt_tokens", 30}, {"completion_tokens", 4}}}};
      response.set_content(reply.dump(), "application/json");
    });
    port = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~FakeJudgeServer() {
    server_.stop();
    thread_.join();
  }
  int port = 0;
  std::vector<nlohmann::json> bodies;

 private:
  httplib::Server server_;
  std::thread thread_;
};

TEST(JudgeMetric, RemoteJudgeThroughOpenAiEngine) {
  FakeJudgeServer server;
  engine::OpenAiEngineOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(server.port);
  options.model = "judge-model";
  engine::OpenAiEngine judge(options);
  JudgeCounters counters;
  EXPECT_DOUBLE_EQ(JudgeMetric(judge, counters).score("blue", rubric_item()), 6.0 / 9.0);
  ASSERT_EQ(server.bodies.size(), 1u);
  EXPECT_EQ(server.bodies[0].at("model"), "judge-model");
  EXPECT_EQ(server.bodies[0].at("temperature"), 0.0);
  const std::string content = server.bodies[0].at("messages").at(0).at("content");
  EXPECT_NE(content.find("Names red, yellow or blue."), std::string::npos);
}

TEST(JudgeMetric, JudgeDownNamesEndpointAndItem) {
  int port = 0;
  {
    FakeJudgeServer server;  // started and stopped: the port is free again
    port = server.port;
  }
  engine::OpenAiEngineOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(port);
  options.model = "judge-model";
  options.max_retries = 1;
  options.retry_backoff_s = 0.01;
  engine::OpenAiEngine judge(options);
  JudgeCounters counters;
  MetricRegistry registry = MetricRegistry::with_text_metrics();
  add_judge_metric(registry, judge, counters);
  const std::vector<SuiteItem> items = {rubric_item()};
  const std::vector<engine::GenerationResult> outputs(1);
  try {
    score_items(items, outputs, registry, {});
    FAIL();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << message;
    EXPECT_NE(message.find("item 'q1'"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace stepdown::eval
