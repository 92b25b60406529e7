// stepdown eval: generate every suite item with a candidate (a local model or an endpoint),
// score the outputs with the items' metrics, and write results.json for `stepdown gate`.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "engine_args.h"
#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/core/sha256.h"
#include "stepdown/eval/eval_runner.h"
#include "stepdown/eval/judge.h"
#include "stepdown/eval/pass_at_k.h"

namespace stepdown::cli {
namespace {

struct EvalArgs {
  EngineArgs candidate;
  EngineArgs judge;
  std::string suite;
  std::string output;
  bool stemmer = false;
};

bool uses_judge(const std::vector<eval::SuiteItem>& items) {
  for (const eval::SuiteItem& item : items) {
    for (const std::string& name : item.metrics) {
      if (name == "judge") return true;
    }
  }
  return false;
}

int run_eval(EvalArgs& args) {
  check_output_is_not_input(args.suite, args.output, "suite");
  // The judge shares the candidate's local settings (threads, weights, batch).
  args.judge.threads = args.candidate.threads;
  args.judge.weights = args.candidate.weights;
  args.judge.context = args.candidate.context;
  std::unique_ptr<engine::Engine> judge;
  eval::JudgeCounters judge_counters;
  eval::MetricRegistry registry = eval::MetricRegistry::with_text_metrics();
  eval::add_code_metrics(registry);
  if (has_engine(args.judge)) {
    judge = make_engine(args.judge, "judge-");
    eval::add_judge_metric(registry, *judge, judge_counters);
  } else {
    eval::add_missing_judge_metric(registry);
  }

  // Read and check the whole suite before loading the candidate, so bad input fails fast.
  const std::vector<eval::SuiteItem> items = eval::read_suite(args.suite, registry);
  if (items.empty()) raise<InvalidArgument>("suite {} has no items", args.suite);
  if (!judge) {
    for (const eval::SuiteItem& item : items) {
      if (std::find(item.metrics.begin(), item.metrics.end(), "judge") != item.metrics.end()) {
        raise<InvalidArgument>("suite {}: item '{}': field 'metric': judge needs a judge model; give --judge-model "
                               "or --judge-endpoint",
                               args.suite, item.id);
      }
    }
  }
  const std::unique_ptr<engine::Engine> candidate = make_engine(args.candidate, "");
  spdlog::info("evaluating {} items of {} with {}", items.size(), args.suite, candidate->describe());

  eval::MetricOptions metric_options;
  metric_options.use_stemmer = args.stemmer;
  eval::Results results = eval::run_eval(items, *candidate, registry, metric_options);
  const std::filesystem::path model_path = args.candidate.model ? *args.candidate.model : "";
  if (args.candidate.model) {
    results.model_id = model_path.filename().string();
    results.model_sha256 = sha256_path(model_path);
  } else {
    results.model_id = candidate->describe();
    results.model_sha256 = "";
  }
  results.suite_path = args.suite;
  results.suite_sha256 = sha256_path(args.suite);
  if (judge && uses_judge(items)) {
    results.judge_engine = judge->describe();
    results.judge_prompt_version = std::string(eval::kJudgePromptVersion);
    spdlog::info("judge {}: {} rubric items, {} pairwise items, {} inconsistent pairs", judge->describe(),
                 judge_counters.rubric_items.load(), judge_counters.pairwise_items.load(),
                 judge_counters.inconsistent_pairs.load());
  }
  eval::write_results(args.output, results);

  for (const auto& [stratum, aggregate] : results.strata) {
    std::fprintf(stderr, "%-20s n=%-5lld", stratum.c_str(), static_cast<long long>(aggregate.n));
    for (const auto& [metric, value] : aggregate.metrics) std::fprintf(stderr, "  %s %.4f", metric.c_str(), value.mean);
    std::fprintf(stderr, "\n");
  }
  std::fprintf(stderr, "wrote %s\n", args.output.c_str());
  return 0;
}

const bool registered = register_command("eval", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Generate and score every suite item with a candidate model");
  add_engine_options(*cmd, args->candidate, "", "The candidate");
  add_engine_options(*cmd, args->judge, "judge-", "The judge of the `judge` metric");
  cmd->add_option("--suite", args->suite, "Suite JSONL")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->output, "results.json to write (only when every item finished)")->required();
  cmd->add_flag("--stemmer", args->stemmer, "rouge*: Porter-stem tokens, as rouge-score's use_stemmer");
  cmd->callback([args, &exit_code] { exit_code = run_eval(*args); });
});

}  // namespace
}  // namespace stepdown::cli
