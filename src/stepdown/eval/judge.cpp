#include "stepdown/eval/judge.h"

#include <cctype>
#include <regex>

#include <fmt/format.h>

#include "stepdown/core/error.h"

namespace stepdown::eval {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The reply shortened for an error message.
std::string quote(std::string_view reply) {
  constexpr size_t kMax = 160;
  std::string out(reply.substr(0, kMax));
  if (reply.size() > kMax) out += "...";
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "\"" + out + "\"";
}

// The last match of `pattern` in `text`, group 1, or nullopt.
std::optional<std::string> last_match(const std::string& text, const std::regex& pattern) {
  std::optional<std::string> found;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern); it != std::sregex_iterator(); ++it) {
    found = (*it)[1].str();
  }
  return found;
}

// The question the answers respond to: the prompt, or the chat's messages one per line.
std::string question_text(const SuiteItem& item) {
  if (!item.has_messages()) return item.prompt;
  std::string out;
  for (const ChatMessage& message : item.messages) out += message.role + ": " + message.content + "\n";
  return out;
}

}  // namespace

int parse_rating(std::string_view reply) {
  const std::string text = lower(reply);
  static const std::regex labelled(R"((?:score|rating)\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?))");
  static const std::regex out_of_ten(R"((\d+(?:\.\d+)?)\s*/\s*10\b)");
  static const std::regex bare(R"(^\W*(\d+(?:\.\d+)?)\W*$)");
  std::optional<std::string> number = last_match(text, labelled);
  if (!number) number = last_match(text, out_of_ten);
  if (!number) number = last_match(text, bare);
  if (!number) {
    raise<InvalidArgument>("the judge's reply has no 1-10 score (expected \"Score: N\"): {}", quote(reply));
  }
  const double value = std::stod(*number);
  if (value < 1.0 || value > 10.0 || value != static_cast<int>(value)) {
    raise<InvalidArgument>("the judge's score {} is not a whole number from 1 to 10: {}", *number, quote(reply));
  }
  return static_cast<int>(value);
}

Verdict parse_verdict(std::string_view reply) {
  const std::string text = lower(reply);
  static const std::regex labelled(R"(verdict\s*[:=]?\s*\**\s*\[?(a|b|tie)\b)");
  static const std::regex bare(R"(^\W*(a|b|tie)\W*$)");
  std::optional<std::string> verdict = last_match(text, labelled);
  if (!verdict) verdict = last_match(text, bare);
  if (!verdict) {
    raise<InvalidArgument>("the judge's reply has no verdict (expected \"Verdict: A\", \"B\" or \"tie\"): {}",
                           quote(reply));
  }
  if (*verdict == "a") return Verdict::kFirst;
  if (*verdict == "b") return Verdict::kSecond;
  return Verdict::kTie;
}

JudgeMetric::JudgeMetric(engine::Engine& judge, JudgeCounters& counters, JudgeOptions options)
    : judge_(judge), counters_(counters), options_(options) {}

namespace {

// A suite's items may lack a reference until `stepdown suite golden` adds one, so this
// is checked when scoring, not when the suite is read.
void require_rubric_or_reference(const SuiteItem& item) {
  if (!item.rubric && !item.reference) {
    raise<InvalidArgument>("field 'rubric': missing, and no 'reference' either; the judge needs a rubric, or a "
                           "reference to compare against (run `stepdown suite golden` first)");
  }
}

// The judge when no judge model was given.
class MissingJudgeMetric final : public Metric {
 public:
  std::string_view name() const override { return "judge"; }
  bool needs_reference() const override { return false; }
  double score(std::string_view, const SuiteItem&) const override {
    raise<InvalidArgument>("the judge metric needs a judge model: give --judge-model or --judge-endpoint");
  }
};

}  // namespace

std::string JudgeMetric::rubric_prompt(const SuiteItem& item, std::string_view answer) {
  return fmt::format(
      "You are grading an assistant's answer against a rubric.\n\n"
      "[Question]\n{}\n\n[Rubric]\n{}\n\n[Answer]\n{}\n\n"
      "Rate how well the answer meets the rubric, from 1 (not at all) to 10 (fully). "
      "Explain in at most two sentences, then end with a line \"Score: N\".",
      question_text(item), *item.rubric, answer);
}

std::string JudgeMetric::pairwise_prompt(const SuiteItem& item, std::string_view first, std::string_view second) {
  return fmt::format(
      "You are comparing two answers to the same question. Judge correctness first, then helpfulness; "
      "ignore length and the order in which the answers appear.\n\n"
      "[Question]\n{}\n\n[Answer A]\n{}\n\n[Answer B]\n{}\n\n"
      "Explain in at most two sentences, then end with a line \"Verdict: A\", \"Verdict: B\" or \"Verdict: tie\".",
      question_text(item), first, second);
}

std::string JudgeMetric::ask(const SuiteItem& item, const std::string& kind, const std::string& prompt) const {
  engine::GenerationRequest request;
  request.id = item.id + "/judge-" + kind;
  request.messages = {{"user", prompt}};
  request.max_tokens = options_.max_tokens;
  request.temperature = 0.0f;
  return judge_.generate(request).text;
}

double JudgeMetric::score(std::string_view prediction, const SuiteItem& item) const {
  require_rubric_or_reference(item);
  if (item.rubric) {
    const int rating = parse_rating(ask(item, "rubric", rubric_prompt(item, prediction)));
    ++counters_.rubric_items;
    return (rating - 1) / 9.0;
  }

  // Pairwise, both orders: candidate first, then reference first.
  const std::string& reference = *item.reference;
  const Verdict candidate_first = parse_verdict(ask(item, "ab", pairwise_prompt(item, prediction, reference)));
  const Verdict reference_first = parse_verdict(ask(item, "ba", pairwise_prompt(item, reference, prediction)));
  ++counters_.pairwise_items;
  const auto win = [](Verdict verdict, Verdict candidate_position) {
    if (verdict == Verdict::kTie) return 0.5;
    return verdict == candidate_position ? 1.0 : 0.0;
  };
  if (candidate_first != Verdict::kTie && candidate_first == reference_first) ++counters_.inconsistent_pairs;
  return (win(candidate_first, Verdict::kFirst) + win(reference_first, Verdict::kSecond)) / 2.0;
}

void add_judge_metric(MetricRegistry& registry, engine::Engine& judge_engine, JudgeCounters& counters,
                      JudgeOptions options) {
  registry.add("judge", [&judge_engine, &counters, options](const MetricOptions&) {
    return std::make_unique<JudgeMetric>(judge_engine, counters, options);
  });
}

void add_missing_judge_metric(MetricRegistry& registry) {
  registry.add("judge", [](const MetricOptions&) { return std::make_unique<MissingJudgeMetric>(); });
}

}  // namespace stepdown::eval
