// stepdown score: scores predictions produced elsewhere against their references.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/metrics_pairs.h"
#include "stepdown/eval/pass_at_k.h"

namespace stepdown::cli {
namespace {

struct ScoreArgs {
  std::string metric;
  std::string input;
  bool stemmer = false;
  std::string normalize = "squad";
  bool json = false;
};

int run_score(const ScoreArgs& args) {
  eval::MetricOptions options;
  options.use_stemmer = args.stemmer;
  options.normalization = eval::TextNormalization::parse(args.normalize);
  eval::MetricRegistry registry = eval::MetricRegistry::with_text_metrics();
  eval::add_code_metrics(registry);
  const std::unique_ptr<eval::Metric> metric = registry.create(args.metric, options);
  const eval::PairScores result = eval::score_pairs(args.input, *metric);

  if (!args.json) {
    std::printf("%s %.6f (mean of %zu pairs)\n", result.metric.c_str(), result.mean, result.scores.size());
    return 0;
  }
  nlohmann::ordered_json out;
  out["metric"] = result.metric;
  if (result.metric.starts_with("rouge")) out["stemmer"] = args.stemmer;
  if (result.metric == "exact_match" || result.metric == "f1") out["normalize"] = args.normalize;
  out["count"] = result.scores.size();
  out["mean"] = result.mean;
  nlohmann::ordered_json per_line = nlohmann::ordered_json::array();
  for (size_t i = 0; i < result.scores.size(); ++i) {
    per_line.push_back({{"line", result.lines[i]}, {"score", result.scores[i]}});
  }
  out["scores"] = std::move(per_line);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

const bool registered = register_command("score", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ScoreArgs>();
  CLI::App* command = app.add_subcommand("score", "Score predictions against references from a JSONL file");
  command->add_option("--metric", args->metric,
                      "Metric: exact_match, f1, regex, json_valid, json_schema, rouge1, rouge2, rougeL, rougeLsum, pass_at_k")
      ->required();
  command->add_option("--input", args->input, "JSONL file, one {\"prediction\", \"reference\"} object per line")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_flag("--stemmer", args->stemmer, "ROUGE: Porter-stem tokens longer than 3 characters");
  command->add_option("--normalize", args->normalize,
                      "exact_match and f1: squad, none, or a list of lowercase,punctuation,articles,whitespace")
      ->capture_default_str();
  command->add_flag("--json", args->json, "Print the mean and every line's score as JSON on stdout");
  command->callback([args, &exit_code] { exit_code = run_score(*args); });
});

}  // namespace
}  // namespace stepdown::cli
