// OpenAiEngine against a fake OpenAI-compatible server on loopback.
#include <httplib.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/engine/openai_engine.h"

namespace stepdown::engine {
namespace {

using nlohmann::json;

class FakeServer {
 public:
  FakeServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& request, httplib::Response& response) {
      last_body = json::parse(request.body);
      last_authorization = request.get_header_value("Authorization");
      if (failures_left > 0) {
        --failures_left;
        response.status = 503;
        response.set_content(R"({"error":"overloaded"})", "application/json");
        return;
      }
      std::string events;
      for (const char* piece : {"Hel", "lo", " world"}) {
        events += "data: " + json{{"choices", {{{"index", 0}, {"delta", {{"content", piece}}}}}}}.dump() + "\n\n";
      }
      events += "data: " + json{{"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "length"}}}}}.dump() + "\n\n";
      events += "data: " + json{{"choices", json::array()}, {"usage", {{"prompt_tokens", 7}, {"completion_tokens", 3}}}}.dump() + "\n\n";
      events += "data: [DONE]\n\n";
      response.set_content(events, "text/event-stream");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& request, httplib::Response& response) {
      last_body = json::parse(request.body);
      // A server that ignores "stream": true and replies with one object.
      response.set_content(json{{"choices", {{{"text", "42"}, {"finish_reason", "stop"}}}},
                                {"usage", {{"prompt_tokens", 4}, {"completion_tokens", 1}}}}
                               .dump(),
                           "application/json");
    });
    port = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }

  int port = 0;
  std::atomic<int> failures_left{0};
  json last_body;
  std::string last_authorization;

 private:
  httplib::Server server_;
  std::thread thread_;
};

OpenAiEngineOptions options_for(int port) {
  OpenAiEngineOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(port);
  options.model = "fake-model";
  options.api_key_env = "STEPDOWN_TEST_API_KEY";
  options.retry_backoff_s = 0.01;
  return options;
}

TEST(OpenAiEngine, StreamsChatCompletion) {
  FakeServer server;
  setenv("STEPDOWN_TEST_API_KEY", "secret-key", 1);
  OpenAiEngine engine(options_for(server.port));
  GenerationRequest request;
  request.id = "item-1";
  request.messages = {{"user", "Say hello"}};
  request.max_tokens = 3;
  const GenerationResult result = engine.generate(request);
  unsetenv("STEPDOWN_TEST_API_KEY");

  EXPECT_EQ(result.id, "item-1");
  EXPECT_EQ(result.text, "Hello world");
  EXPECT_EQ(result.finish_reason, "length");
  EXPECT_EQ(result.prompt_tokens, 7);
  EXPECT_EQ(result.completion_tokens, 3);
  EXPECT_LE(result.ttft_ms, result.total_ms);
  EXPECT_EQ(server.last_body["model"], "fake-model");
  EXPECT_EQ(server.last_body["max_tokens"], 3);
  EXPECT_EQ(server.last_body["messages"][0]["content"], "Say hello");
  EXPECT_EQ(server.last_authorization, "Bearer secret-key");
}

TEST(OpenAiEngine, AcceptsNonStreamingCompletion) {
  FakeServer server;
  OpenAiEngine engine(options_for(server.port));
  GenerationRequest request;
  request.id = "item-2";
  request.prompt = "6 * 7 =";
  const GenerationResult result = engine.generate(request);
  EXPECT_EQ(result.text, "42");
  EXPECT_EQ(result.finish_reason, "stop");
  EXPECT_EQ(result.completion_tokens, 1);
  EXPECT_EQ(server.last_body["prompt"], "6 * 7 =");
  EXPECT_TRUE(server.last_authorization.empty());
}

TEST(OpenAiEngine, RetriesServerErrors) {
  FakeServer server;
  server.failures_left = 2;
  OpenAiEngine engine(options_for(server.port));
  GenerationRequest request;
  request.messages = {{"user", "hi"}};
  EXPECT_EQ(engine.generate(request).text, "Hello world");
  EXPECT_EQ(server.failures_left.load(), 0);
}

TEST(OpenAiEngine, GivesUpWithClearError) {
  FakeServer server;
  server.failures_left = 10;
  OpenAiEngine engine(options_for(server.port));
  GenerationRequest request;
  request.id = "item-3";
  request.messages = {{"user", "hi"}};
  try {
    engine.generate(request);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("HTTP 503"), std::string::npos) << message;
    EXPECT_NE(message.find("item-3"), std::string::npos) << message;
    EXPECT_NE(message.find("3 attempt(s)"), std::string::npos) << message;
  }
}

TEST(OpenAiEngine, EndpointDownIsClearError) {
  int closed_port = 0;
  {
    FakeServer server;
    closed_port = server.port;
  }
  OpenAiEngineOptions options = options_for(closed_port);
  options.max_retries = 0;
  OpenAiEngine engine(options);
  GenerationRequest request;
  request.messages = {{"user", "hi"}};
  try {
    engine.generate(request);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("connection failed"), std::string::npos) << e.what();
  }
}

TEST(OpenAiEngine, RejectsBadUrl) {
  OpenAiEngineOptions options;
  options.base_url = "localhost:8080";
  options.model = "m";
  EXPECT_THROW(OpenAiEngine{options}, InvalidArgument);
}

}  // namespace
}  // namespace stepdown::engine
