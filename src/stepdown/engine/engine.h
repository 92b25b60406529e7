#pragma once
// The one interface through which eval, bench, decide and serve generate text: a local
// model (LocalEngine) or a remote OpenAI-compatible endpoint (OpenAiEngine) such as vLLM,
// llama-server or another stepdown. Both are evaluated exactly the same way.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stepdown/text/chat_template.h"

namespace stepdown::engine {

struct GenerationRequest {
  std::string id;
  // Completion requests send `prompt`; chat requests send `messages` (prompt ignored).
  std::string prompt;
  std::vector<text::ChatMessage> messages;
  int max_tokens = 64;
  // 0 is greedy decoding.
  float temperature = 0.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
};

struct GenerationResult {
  std::string id;
  std::string text;
  // "stop" (end-of-sequence or a stop string) or "length" (max_tokens reached).
  std::string finish_reason;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  // Time to first token and to the end, from sending the request, in milliseconds.
  double ttft_ms = 0.0;
  double total_ms = 0.0;
};

// Called after each finished request with the number done and the total.
using ProgressCallback = std::function<void(size_t done, size_t total)>;

class Engine {
 public:
  virtual ~Engine() = default;
  // What generates: "local:<path>" or "openai:<url> model=<name>", for results and logs.
  virtual std::string describe() const = 0;
  virtual GenerationResult generate(const GenerationRequest& request) = 0;
  // Runs every request; engines that can batch override this. Results keep the order of
  // `requests`.
  virtual std::vector<GenerationResult> generate_all(const std::vector<GenerationRequest>& requests,
                                                     const ProgressCallback& progress = {});
};

}  // namespace stepdown::engine
