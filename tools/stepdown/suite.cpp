// stepdown suite build: a stratified, de-duplicated suite from a traffic log.
// stepdown suite golden: the baseline's greedy outputs as the suite's references.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "engine_args.h"
#include "stepdown/core/atomic_file.h"
#include "stepdown/core/log.h"
#include "stepdown/eval/eval_runner.h"
#include "stepdown/eval/judge.h"
#include "stepdown/eval/pass_at_k.h"
#include "stepdown/eval/suite_build.h"

namespace stepdown::cli {
namespace {

struct SuiteBuildArgs {
  std::string traffic;
  std::string output;
  size_t per_stratum = 0;
  uint64_t seed = 0;
  std::string stratify_by;
  std::string rules;
  std::string default_stratum = "other";
  double duplicate_threshold = 0.8;
  bool no_dedup = false;
  std::vector<std::string> metrics;
  int max_tokens = 128;
  bool json = false;
};

void print_summary(const eval::SuiteBuildResult& result, const SuiteBuildArgs& args) {
  std::fprintf(stderr, "%-24s %9s %11s %9s\n", "stratum", "requests", "duplicates", "selected");
  for (const eval::StratumSummary& stratum : result.strata) {
    std::fprintf(stderr, "%-24s %9zu %11zu %9zu%s\n", stratum.stratum.c_str(), stratum.requests, stratum.duplicates,
                 stratum.selected, stratum.kept_whole ? "  (fewer than --per-stratum: kept whole)" : "");
  }
  std::fprintf(stderr, "%-24s %9zu %11zu %9zu\n", "total", result.requests, result.duplicates, result.items.size());
  if (result.default_stratum_requests > 0) {
    std::fprintf(stderr, "%zu requests matched no %s and went to stratum '%s'\n", result.default_stratum_requests,
                 args.rules.empty() ? "stratum field" : "rule", args.default_stratum.c_str());
  }
}

nlohmann::ordered_json summary_json(const eval::SuiteBuildResult& result, const SuiteBuildArgs& args) {
  nlohmann::ordered_json out;
  out["output"] = args.output;
  out["seed"] = args.seed;
  out["per_stratum"] = args.per_stratum;
  out["requests"] = result.requests;
  out["duplicates"] = result.duplicates;
  out["selected"] = result.items.size();
  out["default_stratum"] = args.default_stratum;
  out["default_stratum_requests"] = result.default_stratum_requests;
  nlohmann::ordered_json strata = nlohmann::ordered_json::array();
  for (const eval::StratumSummary& stratum : result.strata) {
    strata.push_back({{"stratum", stratum.stratum},
                      {"requests", stratum.requests},
                      {"duplicates", stratum.duplicates},
                      {"selected", stratum.selected},
                      {"kept_whole", stratum.kept_whole}});
  }
  out["strata"] = std::move(strata);
  return out;
}

int run_suite_build(const SuiteBuildArgs& args) {
  check_output_is_not_input(args.traffic, args.output, "traffic file");
  eval::SuiteBuildOptions options;
  options.per_stratum = args.per_stratum;
  options.seed = args.seed;
  if (!args.rules.empty()) options.rules = eval::read_stratum_rules(args.rules);
  if (!args.stratify_by.empty()) options.stratify_by = args.stratify_by;
  options.default_stratum = args.default_stratum;
  options.deduplicate = !args.no_dedup;
  options.duplicate_threshold = args.duplicate_threshold;
  options.default_metrics = args.metrics;
  options.default_max_tokens = args.max_tokens;

  eval::MetricRegistry registry = eval::MetricRegistry::with_text_metrics();
  eval::add_code_metrics(registry);
  const eval::SuiteBuildResult result = eval::build_suite(args.traffic, options, registry);
  eval::write_suite(args.output, result.items);
  print_summary(result, args);
  if (args.json) std::printf("%s\n", summary_json(result, args).dump(2).c_str());
  return 0;
}

struct SuiteGoldenArgs {
  EngineArgs baseline;
  std::string suite;
  std::string output;
};

int run_suite_golden(const SuiteGoldenArgs& args) {
  check_output_is_not_input(args.suite, args.output, "suite");
  // Every metric is known here, the judge included, though goldens need no judging.
  eval::MetricRegistry registry = eval::MetricRegistry::with_text_metrics();
  eval::add_code_metrics(registry);
  eval::add_missing_judge_metric(registry);
  const std::vector<eval::SuiteItem> items = eval::read_suite(args.suite, registry);
  const std::unique_ptr<engine::Engine> baseline = make_engine(args.baseline, "");
  spdlog::info("generating goldens for {} with {}", args.suite, baseline->describe());
  size_t generated = 0;
  const std::vector<eval::SuiteItem> golden = eval::make_goldens(items, *baseline, &generated);
  eval::write_suite(args.output, golden);
  std::fprintf(stderr, "%zu items: %zu golden references from %s, %zu human references kept; wrote %s\n",
               golden.size(), generated, baseline->describe().c_str(), golden.size() - generated,
               args.output.c_str());
  return 0;
}

const bool registered = register_command("suite", [](CLI::App& app, int& exit_code) {
  CLI::App* suite = app.add_subcommand("suite", "Build and maintain evaluation suites");
  suite->require_subcommand(1);

  auto args = std::make_shared<SuiteBuildArgs>();
  CLI::App* build = suite->add_subcommand("build", "Sample a stratified, de-duplicated suite from a traffic log");
  build->add_option("--traffic", args->traffic, "Traffic JSONL: one request per line (prompt or messages)")
      ->required()
      ->check(CLI::ExistingFile);
  build->add_option("--per-stratum", args->per_stratum, "Requests to sample per stratum; smaller strata are kept whole")
      ->required()
      ->check(kPositiveInteger);
  build->add_option("--seed", args->seed, "Seed of the sampling; the same seed gives the same suite")
      ->capture_default_str();
  CLI::Option* stratify_by =
      build->add_option("--stratify-by", args->stratify_by, "Traffic field whose value is the stratum [stratum]");
  build->add_option("--rules", args->rules, "YAML list of {stratum, regex}; the first regex that matches the prompt wins")
      ->check(CLI::ExistingFile)
      ->excludes(stratify_by);
  build->add_option("--default-stratum", args->default_stratum, "Stratum of requests that no rule or field assigns")
      ->capture_default_str();
  build->add_option("--dedup-threshold", args->duplicate_threshold,
                    "Jaccard similarity of 3-word shingles at which a later request is a near-duplicate")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  build->add_flag("--no-dedup", args->no_dedup, "Keep near-duplicate requests");
  build->add_option("--metric", args->metrics, "Metric for requests that name none (repeat for several)");
  build->add_option("--max-tokens", args->max_tokens, "max_tokens for requests that set none")
      ->check(kPositiveInteger)
      ->capture_default_str();
  build->add_option("-o,--output", args->output, "Suite JSONL to write")->required();
  build->add_flag("--json", args->json, "Print the stratum summary as JSON on stdout");
  build->callback([args, &exit_code] { exit_code = run_suite_build(*args); });

  auto golden_args = std::make_shared<SuiteGoldenArgs>();
  CLI::App* golden = suite->add_subcommand(
      "golden", "Write the baseline's greedy outputs as references; hand-written references are kept");
  add_engine_options(*golden, golden_args->baseline, "", "The baseline");
  golden->add_option("--suite", golden_args->suite, "Suite JSONL")->required()->check(CLI::ExistingFile);
  golden->add_option("-o,--output", golden_args->output, "Suite JSONL to write, with references")->required();
  golden->callback([golden_args, &exit_code] { exit_code = run_suite_golden(*golden_args); });
});

}  // namespace
}  // namespace stepdown::cli
