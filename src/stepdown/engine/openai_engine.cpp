#include "stepdown/engine/openai_engine.h"

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/core/log.h"

namespace stepdown::engine {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Splits "http://host:port/v1" into "http://host:port" and "/v1".
void split_url(const std::string& url, std::string& scheme_host_port, std::string& path) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0)) {
    raise<InvalidArgument>("endpoint URL '{}' is invalid: expected http://HOST:PORT[/v1] or https://...", url);
  }
  const size_t path_start = url.find('/', scheme_end + 3);
  scheme_host_port = url.substr(0, path_start);
  path = path_start == std::string::npos ? "" : url.substr(path_start);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty()) path = "/v1";
}

json request_body(const GenerationRequest& request, const std::string& model) {
  json body = {{"model", model},
               {"max_tokens", request.max_tokens},
               {"temperature", request.temperature},
               {"seed", request.seed},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (!request.stop.empty()) body["stop"] = request.stop;
  if (request.messages.empty()) {
    body["prompt"] = request.prompt;
  } else {
    json messages = json::array();
    for (const text::ChatMessage& message : request.messages) {
      messages.push_back({{"role", message.role}, {"content", message.content}});
    }
    body["messages"] = std::move(messages);
  }
  return body;
}

// Accumulates a server-sent-event stream of completion chunks.
struct StreamState {
  std::string buffer;  // bytes not yet split into lines
  std::string raw;     // the whole body, for error messages and non-streaming replies
  GenerationResult result;
  bool saw_first_token = false;
  bool done = false;
  Clock::time_point start;
  std::string parse_error;
};

void handle_event(StreamState& state, const std::string& data) {
  if (data == "[DONE]") {
    state.done = true;
    return;
  }
  json chunk = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (chunk.is_discarded()) {
    state.parse_error = "an event is not JSON: " + data.substr(0, 120);
    return;
  }
  if (chunk.contains("usage") && chunk["usage"].is_object()) {
    state.result.prompt_tokens = chunk["usage"].value("prompt_tokens", 0);
    state.result.completion_tokens = chunk["usage"].value("completion_tokens", 0);
  }
  if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) return;
  const json& choice = chunk["choices"][0];
  std::string piece;
  if (choice.contains("delta") && choice["delta"].is_object()) {
    const json& delta = choice["delta"];
    if (delta.contains("content") && delta["content"].is_string()) piece = delta["content"].get<std::string>();
  } else if (choice.contains("text") && choice["text"].is_string()) {
    piece = choice["text"].get<std::string>();
  }
  if (!piece.empty()) {
    if (!state.saw_first_token) {
      state.result.ttft_ms = ms_since(state.start);
      state.saw_first_token = true;
    }
    state.result.text += piece;
  }
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
    state.result.finish_reason = choice["finish_reason"].get<std::string>();
  }
}

void consume(StreamState& state, const char* data, size_t size) {
  state.raw.append(data, size);
  state.buffer.append(data, size);
  size_t line_end;
  while ((line_end = state.buffer.find('\n')) != std::string::npos) {
    std::string line = state.buffer.substr(0, line_end);
    state.buffer.erase(0, line_end + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) == 0) {
      size_t start = 5;
      while (start < line.size() && line[start] == ' ') ++start;
      handle_event(state, line.substr(start));
    }
  }
}

// Fills `state.result` from a reply that was a single JSON object (a server that ignores
// "stream": true).
bool parse_non_streaming(StreamState& state) {
  json reply = json::parse(state.raw, nullptr, false);
  if (reply.is_discarded() || !reply.contains("choices") || !reply["choices"].is_array() || reply["choices"].empty()) {
    return false;
  }
  const json& choice = reply["choices"][0];
  if (choice.contains("message") && choice["message"].is_object()) {
    state.result.text = choice["message"].value("content", "");
  } else {
    state.result.text = choice.value("text", "");
  }
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
    state.result.finish_reason = choice["finish_reason"].get<std::string>();
  }
  if (reply.contains("usage") && reply["usage"].is_object()) {
    state.result.prompt_tokens = reply["usage"].value("prompt_tokens", 0);
    state.result.completion_tokens = reply["usage"].value("completion_tokens", 0);
  }
  state.result.ttft_ms = ms_since(state.start);
  return true;
}

bool is_retryable_status(int status) { return status == 429 || status >= 500; }

}  // namespace

OpenAiEngine::OpenAiEngine(OpenAiEngineOptions options) : options_(std::move(options)) {
  if (options_.model.empty()) raise<InvalidArgument>("endpoint {}: the API model name is missing (--api-model)", options_.base_url);
  split_url(options_.base_url, scheme_host_port_, path_prefix_);
  if (const char* key = std::getenv(options_.api_key_env.c_str()); key != nullptr) api_key_ = key;
}

std::string OpenAiEngine::describe() const {
  return fmt::format("openai:{}{} model={}", scheme_host_port_, path_prefix_, options_.model);
}

GenerationResult OpenAiEngine::generate(const GenerationRequest& request) {
  const bool chat = !request.messages.empty();
  const std::string path = path_prefix_ + (chat ? "/chat/completions" : "/completions");
  const std::string body = request_body(request, options_.model).dump();

  httplib::Client client(scheme_host_port_);
  client.set_connection_timeout(std::chrono::duration<double>(options_.connect_timeout_s));
  client.set_read_timeout(std::chrono::duration<double>(options_.read_timeout_s));

  httplib::Headers headers = {{"Accept", "text/event-stream"}};
  if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);

  for (int attempt = 0;; ++attempt) {
    StreamState state;
    state.start = Clock::now();
    httplib::Request http_request;
    http_request.method = "POST";
    http_request.path = path;
    http_request.headers = headers;
    http_request.body = body;
    http_request.set_header("Content-Type", "application/json");
    http_request.content_receiver = [&state](const char* data, size_t size, uint64_t, uint64_t) {
      consume(state, data, size);
      return true;
    };

    httplib::Result reply = client.send(http_request);
    std::string failure;
    bool retryable = false;
    if (!reply) {
      failure = fmt::format("connection failed ({})", httplib::to_string(reply.error()));
      retryable = true;
    } else if (reply->status != 200) {
      failure = fmt::format("HTTP {}: {}", reply->status, state.raw.substr(0, 300));
      retryable = is_retryable_status(reply->status);
    } else {
      if (!state.buffer.empty()) consume(state, "\n", 1);
      const bool streamed = state.saw_first_token || state.done || !state.result.finish_reason.empty();
      if (!streamed && !parse_non_streaming(state)) {
        failure = "the reply is neither an event stream nor a completion object: " + state.raw.substr(0, 200);
      } else if (!state.parse_error.empty()) {
        failure = state.parse_error;
      } else {
        state.result.id = request.id;
        state.result.total_ms = ms_since(state.start);
        if (state.result.finish_reason.empty()) state.result.finish_reason = "stop";
        if (!state.saw_first_token) state.result.ttft_ms = state.result.total_ms;
        return state.result;
      }
    }

    if (!retryable || attempt >= options_.max_retries) {
      raise<Error>("endpoint {}{}: request '{}' failed after {} attempt(s): {}; check that the server is running "
                   "and serves model '{}'",
                   scheme_host_port_, path, request.id, attempt + 1, failure, options_.model);
    }
    const double backoff_s = options_.retry_backoff_s * static_cast<double>(1 << attempt);
    spdlog::warn("endpoint {}{}: request '{}' attempt {} failed: {}; retrying in {:.1f} s", scheme_host_port_, path,
                 request.id, attempt + 1, failure, backoff_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff_s));
  }
}

}  // namespace stepdown::engine
