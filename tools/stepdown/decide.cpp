// stepdown decide: climb the compression ladder under a decision policy and recommend the
// lightest model that meets the latency budget without leaving any stratum's tolerance.
// Exit codes: 0 a rung recommended, 1 none meets the constraints, 2 usage or input error.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "decide_default.h"
#include "stepdown/core/atomic_file.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/core/sha256.h"
#include "stepdown/decide/cache.h"
#include "stepdown/decide/climb.h"
#include "stepdown/decide/policy.h"

namespace stepdown::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kExitRecommended = 0;
constexpr int kExitNoRung = 1;
constexpr int kExitBadInput = 2;

struct DecideArgs {
  std::string policy;
  std::string out = "decide-out";
  std::string cache;
  bool json = false;
  bool all_rungs = false;
  std::optional<std::string> model;
  std::optional<std::string> tokenizer;
  std::optional<std::string> traffic;
  std::optional<std::string> suite;
  std::vector<std::string> devices;
  std::optional<double> tpot_p95_ms;
  std::optional<double> ttft_p95_ms;
  std::optional<double> e2e_p95_ms;
  std::optional<double> memory_mb;
  std::optional<std::string> rungs;
  std::optional<int> threads;
};

fs::path model_cache_dir() {
  if (const char* dir = std::getenv("STEPDOWN_MODEL_CACHE"); dir != nullptr && *dir != '\0') return dir;
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : ".") / ".cache" / "stepdown" / "models";
}

// Writes the embedded traffic into the cache under its content hash, once.
fs::path materialize_default_traffic(const fs::path& cache_root) {
  const std::string text = kDefaultDecideTraffic;
  const fs::path path = cache_root / "inputs" / ("traffic-demo-" + sha256_hex(text).substr(0, 16) + ".jsonl");
  if (!fs::exists(path)) {
    fs::create_directories(path.parent_path());
    write_file_atomic(path, text);
  }
  return path;
}

decide::DecidePolicy embedded_default_policy(const fs::path& cache_root, bool model_given) {
  decide::DecidePolicy policy =
      decide::parse_decide_policy(kDefaultDecidePolicy, "<embedded default policy>", fs::current_path());
  policy.traffic = materialize_default_traffic(cache_root);
  if (!model_given) {
    policy.model = model_cache_dir() / kDefaultDecideModel;
    if (!fs::exists(policy.model)) {
      raise<InvalidArgument>("the default policy needs {} in {}; run scripts/fetch-models (or give --policy or "
                             "--model)",
                             kDefaultDecideModel, model_cache_dir().string());
    }
  }
  return policy;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream stream(text);
  std::string name;
  while (std::getline(stream, name, ',')) {
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

void apply_flags(const DecideArgs& args, decide::DecidePolicy& policy) {
  if (args.model) policy.model = *args.model;
  if (args.tokenizer) policy.tokenizer = *args.tokenizer;
  if (args.traffic) {
    policy.traffic = *args.traffic;
    policy.suite.reset();
  }
  if (args.suite) {
    policy.suite = *args.suite;
    policy.traffic.reset();
  }
  if (!args.devices.empty()) policy.devices = args.devices;
  if (args.tpot_p95_ms) policy.budget.tpot_p95_ms = *args.tpot_p95_ms;
  if (args.ttft_p95_ms) policy.budget.ttft_p95_ms = *args.ttft_p95_ms;
  if (args.e2e_p95_ms) policy.budget.e2e_p95_ms = *args.e2e_p95_ms;
  if (args.memory_mb) policy.memory_mb = *args.memory_mb;
  if (args.rungs) policy.rungs = split_commas(*args.rungs);
  if (args.threads) policy.threads = *args.threads;
  if (args.all_rungs) policy.stop_at_first = false;
}

int run_decide(const DecideArgs& args) {
  const fs::path cache_root = args.cache.empty() ? decide::default_cache_root() : fs::path(args.cache);
  decide::DecidePolicy policy = args.policy.empty() ? embedded_default_policy(cache_root, args.model.has_value())
                                                    : decide::read_decide_policy(args.policy);
  apply_flags(args, policy);

  decide::DecideOptions options;
  options.policy = policy;
  options.out_dir = args.out;
  options.cache_root = cache_root;
  const decide::DecideOutcome outcome = decide::run_decide(options);

  const nlohmann::json& recommendation = outcome.decision["recommendation"];
  if (args.json) {
    const std::string text = recommendation.dump(2);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    std::printf("%s\n", recommendation["summary"].get<std::string>().c_str());
    for (const auto& reason : recommendation["reasons"]) std::printf("  - %s\n", reason.get<std::string>().c_str());
  }
  for (const auto& row : outcome.decision["predictor_error"]) {
    std::fprintf(stderr, "host %-24s TPOT p50 predicted %8.2f ms, measured %8.2f ms, error %+6.1f%%\n",
                 (row["rung"].get<std::string>() + " (" + row["scheme"].get<std::string>() + ")").c_str(),
                 row["predicted"].get<double>(), row["measured"].get<double>(), row["error_pct"].get<double>());
  }
  return outcome.recommended ? kExitRecommended : kExitNoRung;
}

[[maybe_unused]] const bool registered = register_command("decide", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<DecideArgs>();
  CLI::App* cmd = app.add_subcommand(
      "decide",
      "Climb the compression ladder and recommend the lightest model that meets the budget (exit 0 recommended, "
      "1 none meets it, 2 bad input); with no --policy, runs the embedded SmolLM2 demo");
  cmd->add_option("--policy", args->policy, "Decision policy YAML (see docs/decide.md)");
  cmd->add_option("--out", args->out, "Output folder, replaced as a whole at the end")->capture_default_str();
  cmd->add_option("--cache", args->cache,
                  "Cache of finished steps (default $STEPDOWN_DECIDE_CACHE or ~/.cache/stepdown/decide)");
  cmd->add_flag("--json", args->json, "Print the recommendation as JSON on stdout");
  cmd->add_flag("--all-rungs", args->all_rungs, "Climb every rung instead of stopping at the first that passes");
  cmd->add_option("--model", args->model, "Model to compress (overrides the policy's model)");
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer for a model format that carries none");
  cmd->add_option("--traffic", args->traffic, "Traffic JSONL to build the suite from (replaces suite)");
  cmd->add_option("--suite", args->suite, "Suite JSONL (replaces traffic)");
  cmd->add_option("--device", args->devices,
                  "Target device: host, a builtin profile name or a profile .yaml (repeatable; replaces the policy's)");
  cmd->add_option("--tpot-p95-ms", args->tpot_p95_ms, "Budget: time per output token, p95, in ms")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ttft-p95-ms", args->ttft_p95_ms, "Budget: time to first token, p95, in ms")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--e2e-p95-ms", args->e2e_p95_ms, "Budget: TTFT plus output_tokens - 1 TPOTs, p95, in ms")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--memory-mb", args->memory_mb, "Budget: memory for the model and its KV cache, in MB")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--rungs", args->rungs, "Comma-separated rungs to try, in ladder order");
  cmd->add_option("--threads", args->threads, "Worker threads; 0 uses every core")->check(kNonNegativeInteger);
  cmd->callback([args, &exit_code] {
    // Set before reading anything, so an error thrown below exits with the bad-input code.
    exit_code = kExitBadInput;
    try {
      exit_code = run_decide(*args);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      // A library's own exception (filesystem, JSON) is still a failed run, not "no rung".
      throw Error(e.what());
    }
  });
});

}  // namespace
}  // namespace stepdown::cli
