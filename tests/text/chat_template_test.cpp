// Chat templates against jinja2 renderings of the families' templates
// (scripts/golden/make_tokenizer_fixtures.py wrote chat_templates.json).
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "stepdown/core/error.h"
#include "stepdown/text/chat_template.h"
#include "test_paths.h"

namespace stepdown::text {
namespace {

using nlohmann::json;

const json& rendered_templates() {
  static const json templates = [] {
    std::ifstream in(test::source_dir() / "tests/golden/tokenizer/chat_templates.json");
    return json::parse(in);
  }();
  return templates;
}

const std::map<std::string, std::vector<ChatMessage>>& conversations() {
  static const std::map<std::string, std::vector<ChatMessage>> all = {
      {"user_only", {{"user", "Hello!"}}},
      {"system_user", {{"system", "Be brief."}, {"user", "Hi there"}}},
      {"multi_turn", {{"user", "What is 2+2?"}, {"assistant", "4."}, {"user", "  And 3+3?\n"}}},
      {"tool_role", {{"user", "Run it."}, {"tool", "ok"}}},
      {"system_multi_turn",
       {{"system", "You are terse."}, {"user", "Name a colour."}, {"assistant", "Blue."}, {"user", "Another."}}},
  };
  return all;
}

// Renders every conversation with `name` and compares it with jinja2's output; where the
// Jinja template raised, the code must throw InvalidArgument.
void check_template(const std::string& name, bool compare_without_generation_prompt) {
  const auto chat = chat_template_by_name(name);
  EXPECT_EQ(chat->name(), name);
  const json& rendered = rendered_templates().at(name).at("rendered");
  for (const auto& [conversation, messages] : conversations()) {
    for (const bool generation_prompt : {false, true}) {
      if (!generation_prompt && !compare_without_generation_prompt) continue;
      const std::string key = conversation + (generation_prompt ? "/gen" : "/nogen");
      const json& expected = rendered.at(key);
      if (expected.is_object()) {
        EXPECT_THROW(chat->render(messages, generation_prompt), InvalidArgument) << key;
      } else {
        EXPECT_EQ(chat->render(messages, generation_prompt), expected.get<std::string>()) << key;
      }
    }
  }
}

TEST(ChatTemplate, ChatMlMatchesSmolLM2Jinja) { check_template("chatml", true); }

// The Llama 3 template in the shared tokenizer_config.json always appends the assistant
// header, so only renderings with the generation prompt can be compared with it.
TEST(ChatTemplate, Llama3MatchesJinja) {
  check_template("llama3", false);
  const auto chat = chat_template_by_name("llama3");
  EXPECT_EQ(chat->render({{"user", " Hi "}}, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, MistralMatchesJinja) { check_template("mistral", true); }

// Gemma's Jinja template writes an unknown role such as "tool" into the turn header; the
// code rejects it because Gemma only knows user and model turns.
TEST(ChatTemplate, GemmaMatchesJinjaExceptUnknownRoles) {
  const auto chat = chat_template_by_name("gemma");
  const json& rendered = rendered_templates().at("gemma").at("rendered");
  for (const auto& [conversation, messages] : conversations()) {
    for (const bool generation_prompt : {false, true}) {
      const std::string key = conversation + (generation_prompt ? "/gen" : "/nogen");
      if (conversation == "tool_role") {
        EXPECT_THROW(chat->render(messages, generation_prompt), InvalidArgument);
      } else {
        EXPECT_EQ(chat->render(messages, generation_prompt), rendered.at(key).get<std::string>()) << key;
      }
    }
  }
}

TEST(ChatTemplate, UnknownRoleErrorNamesRoleAndTemplate) {
  try {
    chat_template_by_name("mistral")->render({{"user", "a"}, {"tool", "b"}}, true);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("'mistral'"));
    EXPECT_THAT(e.what(), testing::HasSubstr("'tool'"));
  }
  EXPECT_THROW(chat_template_by_name("gemma")->render({{"assistant", "first"}}, true), InvalidArgument);
  EXPECT_THROW(chat_template_by_name("chatml")->render({{"", "x"}}, true), InvalidArgument);
  EXPECT_THROW(chat_template_by_name("vicuna"), InvalidArgument);
}

TEST(ChatTemplate, ChosenFromTemplateTextOrArchitecture) {
  for (const auto& [name, entry] : rendered_templates().items()) {
    EXPECT_EQ(chat_template_name_for(entry.at("template").get<std::string>(), "llama"), name);
  }
  EXPECT_EQ(chat_template_name_for(std::nullopt, "gemma3"), "gemma");
  EXPECT_EQ(chat_template_name_for(std::nullopt, "qwen2"), "chatml");
  EXPECT_EQ(chat_template_name_for(std::nullopt, "mistral"), "mistral");
  EXPECT_THROW(chat_template_name_for(std::nullopt, "llama"), InvalidArgument);
  EXPECT_THROW(chat_template_name_for(std::string("{{ messages }}"), std::nullopt), InvalidArgument);
}

}  // namespace
}  // namespace stepdown::text
