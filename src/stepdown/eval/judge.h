#pragma once
// LLM-as-judge: a judge model, behind any Engine, scores an output in one of two ways.
//   Rubric: the item has a `rubric`; the judge rates the answer 1-10 against it, and the
//     score is (rating - 1) / 9 in [0, 1].
//   Pairwise: the item has no rubric but a reference (golden or human); the judge picks
//     the better of candidate and reference twice, once with each in the first position,
//     and the score is the candidate's mean win (win 1, tie 0.5, loss 0). A pair of
//     verdicts that picks the same position both times is counted as inconsistent (the
//     judge followed the position, not the answer); it scores 0.5.
// The prompts are versioned by kJudgePromptVersion, which results.json records, so a
// change of wording is never compared silently against older scores.
#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "stepdown/engine/engine.h"
#include "stepdown/eval/metrics.h"

namespace stepdown::eval {

inline constexpr std::string_view kJudgePromptVersion = "stepdown-judge-v1";

enum class Verdict { kFirst, kSecond, kTie };

// The 1-10 rating in a judge's reply: the number after the last "Score:" / "Rating:", or
// else the last "N/10", or else a reply that is only a number. Throws InvalidArgument
// quoting the reply when none is found or the number is outside 1-10.
int parse_rating(std::string_view reply);
// The verdict in a pairwise reply: the last "Verdict: A|B|tie", or a reply that is only
// "A", "B" or "tie" (any case, with surrounding punctuation). Throws InvalidArgument
// quoting the reply when none is found.
Verdict parse_verdict(std::string_view reply);

struct JudgeOptions {
  int max_tokens = 256;  // of each judge reply
};

// What a judge has seen so far; shared by every copy of the metric a registry creates.
struct JudgeCounters {
  std::atomic<int64_t> rubric_items{0};
  std::atomic<int64_t> pairwise_items{0};
  std::atomic<int64_t> inconsistent_pairs{0};
};

class JudgeMetric final : public Metric {
 public:
  // `judge` and `counters` must outlive the metric.
  JudgeMetric(engine::Engine& judge, JudgeCounters& counters, JudgeOptions options = {});

  std::string_view name() const override { return "judge"; }
  bool needs_reference() const override { return false; }
  // Throws InvalidArgument naming `rubric` and `reference` when the item has neither.
  double score(std::string_view prediction, const SuiteItem& item) const override;

  // The prompts the judge sees, for tests and docs.
  static std::string rubric_prompt(const SuiteItem& item, std::string_view answer);
  static std::string pairwise_prompt(const SuiteItem& item, std::string_view first, std::string_view second);

 private:
  std::string ask(const SuiteItem& item, const std::string& kind, const std::string& prompt) const;

  engine::Engine& judge_;
  JudgeCounters& counters_;
  JudgeOptions options_;
};

// Registers `judge` backed by `judge_engine`.
void add_judge_metric(MetricRegistry& registry, engine::Engine& judge_engine, JudgeCounters& counters,
                      JudgeOptions options = {});
// Registers a `judge` that reads suites but cannot score: its score() throws saying to give
// a judge model. For commands that read suites without judging them.
void add_missing_judge_metric(MetricRegistry& registry);

}  // namespace stepdown::eval
