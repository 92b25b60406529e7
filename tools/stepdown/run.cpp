// stepdown run: generate text from a model on the CPU, streaming tokens to stdout, with
// TTFT, prefill and decode speed and peak memory on stderr at the end.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "command.h"
#include "stepdown/core/error.h"
#include "stepdown/core/log.h"
#include "stepdown/io/model_file.h"
#include "stepdown/model/generate.h"
#include "stepdown/text/chat_template.h"
#include "stepdown/text/model_tokenizer.h"

namespace stepdown::cli {
namespace {

struct RunOptions {
  std::string model_path;
  std::optional<std::string> tokenizer_path;
  std::optional<std::string> prompt;
  bool chat = false;
  bool chat_template = false;
  std::optional<std::string> system;
  int32_t max_tokens = 256;
  int64_t context = 4096;
  int threads = 0;
  std::string weights = "native";
  model::SamplerOptions sampling;
};

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

model::WeightConversion parse_conversion(const std::string& name) {
  if (name == "native") return model::WeightConversion::NONE;
  if (name == "f32") return model::WeightConversion::F32;
  if (name == "bf16") return model::WeightConversion::BF16;
  raise<InvalidArgument>("--weights is \"{}\"; expected native, f32 or bf16", name);
}

// A model with its tokenizer, ready to generate.
struct LoadedModel {
  io::ModelFile file;
  std::unique_ptr<text::Tokenizer> tokenizer;
  model::ModelWeights weights;
};

// Length of the longest common prefix of a and b.
size_t common_prefix(const std::vector<model::TokenId>& a, const std::vector<model::TokenId>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

class Runner {
 public:
  Runner(LoadedModel& loaded, const RunOptions& options)
      : loaded_(loaded),
        options_(options),
        pool_(options.threads),
        transformer_(loaded.weights, pool_),
        cache_(loaded.weights.config, std::min(options.context, loaded.weights.config.context_length)),
        sampler_(options.sampling) {
    generation_.max_tokens = options.max_tokens;
    generation_.stop_ids = loaded.tokenizer->stop_ids();
  }

  // Feeds `tokens` as the continuation of what the cache holds, rewinding the cache to the
  // longest prefix it shares with them, and streams the reply. Returns the reply's text.
  std::string respond(const std::vector<model::TokenId>& tokens) {
    const size_t keep = common_prefix(history_, tokens);
    // Always feed at least one token, so the logits come from this turn's last token.
    const size_t reuse = std::min(keep, tokens.size() - 1);
    cache_.set_length(static_cast<int64_t>(reuse));
    history_.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(reuse));
    const std::vector<model::TokenId> fresh(tokens.begin() + static_cast<std::ptrdiff_t>(reuse), tokens.end());

    text::StreamDecoder decoder(*loaded_.tokenizer);
    std::string reply;
    std::vector<model::TokenId> generated;
    const model::GenerationStats stats =
        model::generate(transformer_, cache_, fresh, sampler_, generation_, [&](model::TokenId id) {
          generated.push_back(id);
          const std::string piece = decoder.push(id);
          reply += piece;
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
          return true;
        });
    const std::string tail = decoder.flush();
    reply += tail;
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);

    // The cache contains the fed tokens and every generated token but the last one.
    history_.insert(history_.end(), fresh.begin(), fresh.end());
    history_.insert(history_.end(), generated.begin(), generated.end());
    history_.resize(static_cast<size_t>(cache_.length()));
    report(stats);
    return reply;
  }

 private:
  void report(const model::GenerationStats& stats) const {
    std::fprintf(stderr,
                 "prompt %lld tokens, generated %lld | TTFT %.1f ms | prefill %.1f tokens/s | decode %.1f tokens/s | "
                 "peak RSS %.0f MiB | %d threads\n",
                 static_cast<long long>(stats.prompt_tokens), static_cast<long long>(stats.generated_tokens),
                 stats.ttft_seconds * 1e3, stats.prefill_tokens_per_second(), stats.decode_tokens_per_second(),
                 peak_rss_mib(), pool_.size());
  }

  LoadedModel& loaded_;
  const RunOptions& options_;
  ThreadPool pool_;
  model::Transformer transformer_;
  model::KVCache cache_;
  model::Sampler sampler_;
  model::GenerationOptions generation_;
  std::vector<model::TokenId> history_;  // the tokens whose keys and values the cache contains
};

std::vector<text::ChatMessage> start_messages(const RunOptions& options) {
  std::vector<text::ChatMessage> messages;
  if (options.system) messages.push_back({"system", *options.system});
  return messages;
}

int run(const RunOptions& options) {
  if (options.chat == options.prompt.has_value()) raise<InvalidArgument>("give exactly one of --prompt and --chat");

  io::OpenOptions open_options;
  if (options.tokenizer_path) open_options.tokenizer_path = *options.tokenizer_path;
  LoadedModel loaded{io::open_model_file(options.model_path, open_options), nullptr, {}};
  loaded.tokenizer = text::load_model_tokenizer(loaded.file);
  loaded.weights = model::load_weights(loaded.file, parse_conversion(options.weights));
  const model::ModelConfig& config = loaded.weights.config;
  spdlog::info("{}: {} blocks, dim {}, {} heads ({} kv), vocab {}, weights {}", options.model_path, config.n_layers,
               config.dim, config.n_heads, config.n_kv_heads, config.vocab_size, options.weights);
  Runner runner(loaded, options);

  if (options.prompt) {
    std::string prompt_text = *options.prompt;
    if (options.chat_template) {
      std::vector<text::ChatMessage> messages = start_messages(options);
      messages.push_back({"user", prompt_text});
      prompt_text = text::chat_template_for(loaded.file.metadata)->render(messages, true);
    }
    // A chat template writes BOS itself when the model wants one, so only a raw prompt gets
    // the tokenizer's special tokens (as Hugging Face's apply_chat_template does).
    runner.respond(loaded.tokenizer->encode(prompt_text, /*add_special=*/!options.chat_template));
    return 0;
  }

  // Interactive chat: one user message per line; the KV cache carries the conversation.
  const std::unique_ptr<text::ChatTemplate> chat_template = text::chat_template_for(loaded.file.metadata);
  std::vector<text::ChatMessage> messages = start_messages(options);
  std::string line;
  while (std::fprintf(stderr, "> "), std::fflush(stderr), std::getline(std::cin, line)) {
    if (line.empty()) continue;
    messages.push_back({"user", line});
    const std::string rendered = chat_template->render(messages, true);
    const std::string reply = runner.respond(loaded.tokenizer->encode(rendered, /*add_special=*/false));
    messages.push_back({"assistant", reply});
  }
  return 0;
}

const bool registered = register_command("run", [](CLI::App& app, int& exit_code) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a model, streaming tokens to stdout");
  cmd->add_option("model", options->model_path, "Model file: GGUF, Hugging Face directory or llama2.c checkpoint")
      ->required();
  cmd->add_option("--tokenizer", options->tokenizer_path, "Tokenizer file for formats that carry none");
  CLI::Option* prompt = cmd->add_option("--prompt", options->prompt, "Text to continue");
  CLI::Option* chat = cmd->add_flag("--chat", options->chat, "Chat interactively: one user message per stdin line");
  prompt->excludes(chat);
  cmd->add_flag("--chat-template", options->chat_template,
                "With --prompt: apply the model's chat template to the prompt as one user message");
  cmd->add_option("--system", options->system, "System message for the chat template");
  cmd->add_option("-n,--max-tokens", options->max_tokens, "Tokens to generate")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--temp", options->sampling.temperature, "Sampling temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", options->sampling.top_k, "Keep the k most likely tokens; <= 0 disables, 1 is greedy")
      ->capture_default_str();
  cmd->add_option("--top-p", options->sampling.top_p, "Keep the smallest set with this probability mass; 0 is greedy")
      ->capture_default_str();
  cmd->add_option("--min-p", options->sampling.min_p, "Drop tokens below this fraction of the top probability")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", options->sampling.repeat_penalty, "Penalty on recent tokens; 1 disables")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", options->sampling.repeat_window, "Recent tokens the repeat penalty covers")
      ->capture_default_str();
  cmd->add_option("--seed", options->sampling.seed, "Seed of the sampler; the same seed repeats a run")
      ->capture_default_str();
  cmd->add_option("--threads", options->threads, "Worker threads; 0 uses every core")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--ctx", options->context, "KV cache size in tokens, capped at the model's context length")
      ->capture_default_str();
  cmd->add_option("--weights", options->weights,
                  "Format of the weights in memory: native (as stored, mapped), f32 or bf16 (converted at load)")
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = run(*options); });
});

}  // namespace
}  // namespace stepdown::cli
