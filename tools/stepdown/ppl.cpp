// stepdown ppl: perplexity of a model over a text, chunked as llama-perplexity does, and
// with --base the KL divergence of the model's next-token distributions from BASE's.
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "stepdown/core/error.h"
#include "stepdown/core/progress.h"
#include "stepdown/engine/local_engine.h"
#include "stepdown/eval/perplexity.h"

namespace stepdown::cli {
namespace {

struct PplArgs {
  std::string model;
  std::string text;
  std::optional<std::string> base;
  std::optional<std::string> tokenizer;
  int64_t ctx = 512;
  int64_t batch = 0;
  int threads = 0;
  std::string weights = "native";
  bool json = false;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise<IoError>("failed to open text file {}", path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::unique_ptr<engine::LocalEngine> load(const std::string& path, const PplArgs& args) {
  engine::LocalEngineOptions options;
  options.model_path = path;
  if (args.tokenizer) options.tokenizer_path = *args.tokenizer;
  options.threads = args.threads;
  options.weights = args.weights;
  options.batch = 1;
  return std::make_unique<engine::LocalEngine>(options);
}

nlohmann::ordered_json perplexity_json(const eval::PerplexityResult& r) {
  return {{"ppl", r.ppl}, {"ppl_stderr", r.ppl_stderr}, {"mean_nll", r.mean_nll}, {"text_tokens", r.text_tokens},
          {"chunks", r.chunks}, {"scored_tokens", r.scored_tokens}};
}

int run_ppl(const PplArgs& args) {
  const std::unique_ptr<engine::LocalEngine> candidate = load(args.model, args);
  std::unique_ptr<engine::LocalEngine> base;
  if (args.base) base = load(*args.base, args);
  // With --base the tokens come from BASE's tokenizer, as llama-perplexity takes them
  // from the base run's logits file.
  const text::Tokenizer& tokenizer = base ? base->tokenizer() : candidate->tokenizer();
  const std::vector<text::TokenId> tokens = tokenizer.encode(read_text(args.text), /*add_special=*/true);
  const std::optional<text::TokenId> bos =
      eval::adds_bos(tokenizer) ? tokenizer.bos_id() : std::optional<text::TokenId>{};
  eval::PerplexityOptions options;
  options.ctx = args.ctx;
  options.batch = args.batch;

  const int64_t chunks = static_cast<int64_t>(tokens.size()) / std::max<int64_t>(1, args.ctx);
  Progress progress("ppl", chunks);
  const auto on_chunk = [&](int64_t done, int64_t) { progress.update(done); };
  eval::PerplexityResult result;
  std::optional<eval::KlDivergenceResult> kl;
  if (base) {
    kl = eval::kl_divergence(base->transformer(), candidate->transformer(), tokens, bos, options, result, on_chunk);
  } else {
    result = eval::perplexity(candidate->transformer(), tokens, bos, options, on_chunk);
  }
  progress.finish();

  if (args.json) {
    nlohmann::ordered_json out = {{"model", args.model}, {"text", args.text}, {"ctx", args.ctx}};
    out["perplexity"] = perplexity_json(result);
    if (kl) {
      out["base"] = {{"model", *args.base}, {"perplexity", perplexity_json(kl->base)}};
      out["kld"] = {{"mean", kl->mean},       {"mean_stderr", kl->mean_stderr}, {"p99", kl->p99},
                    {"max", kl->max},         {"same_top_rate", kl->same_top_rate}};
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%lld tokens, %lld chunks of %lld, %lld scored\n", static_cast<long long>(result.text_tokens),
              static_cast<long long>(result.chunks), static_cast<long long>(args.ctx),
              static_cast<long long>(result.scored_tokens));
  std::printf("PPL          %.6f +/- %.6f\n", result.ppl, result.ppl_stderr);
  if (kl) {
    std::printf("PPL(base)    %.6f +/- %.6f\n", kl->base.ppl, kl->base.ppl_stderr);
    std::printf("Mean KLD     %.6f +/- %.6f\n", kl->mean, kl->mean_stderr);
    std::printf("99.0%% KLD    %.6f\n", kl->p99);
    std::printf("Max KLD      %.6f\n", kl->max);
    std::printf("Same top     %.3f%%\n", 100.0 * kl->same_top_rate);
  }
  return 0;
}

const bool registered = register_command("ppl", [](CLI::App& app, int& exit_code) {
  auto args = std::make_shared<PplArgs>();
  CLI::App* cmd = app.add_subcommand("ppl", "Perplexity over a text (llama-perplexity's chunking), KLD with --base");
  cmd->add_option("model", args->model, "Model file: GGUF, Hugging Face directory or llama2.c checkpoint")->required();
  cmd->add_option("--text", args->text, "Text file to score")->required()->check(CLI::ExistingFile);
  cmd->add_option("--ctx", args->ctx, "Tokens per chunk; the second half of each chunk is scored")
      ->capture_default_str();
  cmd->add_option("--base", args->base, "Reference model: report KL(base || model) per scored token");
  cmd->add_option("--batch", args->batch, "Tokens per forward call within a chunk; 0 is the whole chunk")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer file for formats that carry none");
  cmd->add_option("--threads", args->threads, "Worker threads; 0 uses every core")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--weights", args->weights, "Weights in memory: native, f32 or bf16")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print the results as JSON");
  cmd->callback([args, &exit_code] { exit_code = run_ppl(*args); });
});

}  // namespace
}  // namespace stepdown::cli
