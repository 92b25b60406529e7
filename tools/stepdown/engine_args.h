#pragma once
// The options that choose an Engine on the command line, shared by `eval`, `suite golden`
// and the judge: a local model (--model, --tokenizer, --threads, --weights, --batch) or an
// OpenAI-compatible endpoint (--endpoint, --api-model, --api-key-env).
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "stepdown/engine/engine.h"

namespace stepdown::cli {

struct EngineArgs {
  std::optional<std::string> model;
  std::optional<std::string> tokenizer;
  std::optional<std::string> endpoint;
  std::optional<std::string> api_model;
  std::string api_key_env = "OPENAI_API_KEY";
  int threads = 0;
  std::string weights = "native";
  int batch = 8;
  int64_t context = 4096;
};

// Adds the options to `cmd` with `prefix` in front of each name ("" or "judge-"); the
// prefixed set leaves out the local tuning options, which the judge shares.
void add_engine_options(CLI::App& cmd, EngineArgs& args, const std::string& prefix, const std::string& what);

// True when a model or an endpoint was given.
bool has_engine(const EngineArgs& args);

// The engine the options name. Throws InvalidArgument when both or neither of a model and
// an endpoint are given (naming the options with `prefix`), or --api-model is missing.
std::unique_ptr<engine::Engine> make_engine(const EngineArgs& args, const std::string& prefix);

}  // namespace stepdown::cli
