#pragma once
// An Engine that calls an OpenAI-compatible HTTP endpoint: POST {base}/chat/completions
// for chat requests and {base}/completions for plain prompts, streamed (server-sent
// events) so that time to first token is measured on the client.
#include <string>

#include "stepdown/engine/engine.h"

namespace stepdown::engine {

struct OpenAiEngineOptions {
  // "http://host:port" or "http://host:port/v1"; "/v1" is added when the URL has no path.
  std::string base_url;
  // The "model" field sent with every request.
  std::string model;
  // Environment variable holding the API key; an unset or empty variable sends no
  // Authorization header.
  std::string api_key_env = "OPENAI_API_KEY";
  double connect_timeout_s = 5.0;
  double read_timeout_s = 120.0;
  // Retries after a connection failure, HTTP 429 or 5xx, with exponential backoff.
  int max_retries = 2;
  double retry_backoff_s = 0.5;
};

class OpenAiEngine final : public Engine {
 public:
  explicit OpenAiEngine(OpenAiEngineOptions options);
  std::string describe() const override;
  GenerationResult generate(const GenerationRequest& request) override;

 private:
  OpenAiEngineOptions options_;
  std::string scheme_host_port_;
  std::string path_prefix_;
  std::string api_key_;
};

}  // namespace stepdown::engine
