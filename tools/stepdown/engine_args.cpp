#include "engine_args.h"

#include "command.h"

#include "stepdown/core/error.h"
#include "stepdown/engine/local_engine.h"
#include "stepdown/engine/openai_engine.h"

namespace stepdown::cli {

void add_engine_options(CLI::App& cmd, EngineArgs& args, const std::string& prefix, const std::string& what) {
  cmd.add_option("--" + prefix + "model", args.model, what + ": a local model file (GGUF, HF directory, llama2.c)");
  cmd.add_option("--" + prefix + "endpoint", args.endpoint,
                 what + ": an OpenAI-compatible endpoint, http://HOST:PORT[/v1]");
  cmd.add_option("--" + prefix + "api-model", args.api_model, "The model name sent to --" + prefix + "endpoint");
  cmd.add_option("--" + prefix + "api-key-env", args.api_key_env,
                 "Environment variable with the API key of --" + prefix + "endpoint")
      ->capture_default_str();
  cmd.add_option("--" + prefix + "tokenizer", args.tokenizer,
                 "Tokenizer file for a --" + prefix + "model format that carries none");
  if (!prefix.empty()) return;
  cmd.add_option("--threads", args.threads, "Worker threads of local models; 0 uses every core")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd.add_option("--weights", args.weights, "Weights of local models in memory: native, f32 or bf16")
      ->capture_default_str();
  cmd.add_option("--batch", args.batch, "Sequences a local model decodes together")
      ->check(kPositiveInteger)
      ->capture_default_str();
  cmd.add_option("--ctx", args.context, "KV cache limit per sequence of local models")->capture_default_str();
}

bool has_engine(const EngineArgs& args) { return args.model.has_value() || args.endpoint.has_value(); }

std::unique_ptr<engine::Engine> make_engine(const EngineArgs& args, const std::string& prefix) {
  if (args.model.has_value() == args.endpoint.has_value()) {
    raise<InvalidArgument>("give exactly one of --{}model and --{}endpoint", prefix, prefix);
  }
  if (args.model) {
    engine::LocalEngineOptions options;
    options.model_path = *args.model;
    if (args.tokenizer) options.tokenizer_path = *args.tokenizer;
    options.threads = args.threads;
    options.weights = args.weights;
    options.batch = args.batch;
    options.context = args.context;
    return std::make_unique<engine::LocalEngine>(options);
  }
  if (!args.api_model) raise<InvalidArgument>("--{}endpoint needs --{}api-model", prefix, prefix);
  engine::OpenAiEngineOptions options;
  options.base_url = *args.endpoint;
  options.model = *args.api_model;
  options.api_key_env = args.api_key_env;
  return std::make_unique<engine::OpenAiEngine>(options);
}

}  // namespace stepdown::cli
