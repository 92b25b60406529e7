// Chat templates as code. Each render() produces exactly what the family's Jinja template
// produces for plain-text messages (tests/golden/tokenizer/chat_templates.json holds the
// jinja2 renderings they are checked against).
#include "stepdown/text/chat_template.h"

#include <fmt/format.h>

#include "stepdown/core/error.h"

namespace stepdown::text {
namespace {

// Strips leading and trailing whitespace as Jinja's `trim` filter does (Python str.strip).
std::string trim(const std::string& text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string::npos) return {};
  const size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

// A role written literally into a header must not break the header's markup.
void check_literal_role(const ChatMessage& message, std::string_view template_name) {
  if (message.role.empty() || message.role.find_first_of("<>\n|[]") != std::string::npos) {
    raise<InvalidArgument>("chat template '{}' cannot express the role '{}': a role must be a non-empty word",
                           template_name, message.role);
  }
}

// Mistral and Gemma expect an optional system message, then user and assistant turns
// alternating from a user turn; their templates raise an exception otherwise.
void check_alternating(const std::vector<ChatMessage>& turns, std::string_view template_name) {
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string& role = turns[i].role;
    if (role != "user" && role != "assistant") {
      raise<InvalidArgument>("chat template '{}' cannot express the role '{}' (message {}): it supports system "
                             "first, then user and assistant",
                             template_name, role, i);
    }
    if ((role == "user") != (i % 2 == 0)) {
      raise<InvalidArgument>("chat template '{}' needs user and assistant turns to alternate, starting with user; "
                             "message {} has role '{}'",
                             template_name, i, role);
    }
  }
}

// ChatML as SmolLM2 ships it: a default system prompt when the first message is not a
// system message, then <|im_start|>role\ncontent<|im_end|>\n per message.
class ChatMlTemplate final : public ChatTemplate {
 public:
  std::string_view name() const override { return "chatml"; }
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const override {
    std::string out;
    for (size_t i = 0; i < messages.size(); ++i) {
      check_literal_role(messages[i], name());
      if (i == 0 && messages[0].role != "system") {
        out += "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";
      }
      out += fmt::format("<|im_start|>{}\n{}<|im_end|>\n", messages[i].role, messages[i].content);
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
  }
};

// Llama 3: <|begin_of_text|>, then a header per message and the trimmed content ended by
// <|eot_id|>.
class Llama3Template final : public ChatTemplate {
 public:
  std::string_view name() const override { return "llama3"; }
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const override {
    std::string out = "<|begin_of_text|>";
    for (const ChatMessage& message : messages) {
      check_literal_role(message, name());
      out += fmt::format("<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>", message.role, trim(message.content));
    }
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
  }
};

// Mistral: <s>[INST] user [/INST]assistant</s>... A system message goes before the first
// user message, separated by a blank line. The prompt already ends where the assistant
// writes, so add_generation_prompt adds nothing.
class MistralTemplate final : public ChatTemplate {
 public:
  std::string_view name() const override { return "mistral"; }
  std::string render(const std::vector<ChatMessage>& messages, bool /*add_generation_prompt*/) const override {
    const bool has_system = !messages.empty() && messages[0].role == "system";
    const std::vector<ChatMessage> turns(messages.begin() + (has_system ? 1 : 0), messages.end());
    check_alternating(turns, name());
    std::string out = "<s>";
    for (size_t i = 0; i < turns.size(); ++i) {
      if (turns[i].role == "user") {
        const std::string prefix = (i == 0 && has_system) ? messages[0].content + "\n\n" : std::string();
        out += fmt::format("[INST] {}{} [/INST]", prefix, turns[i].content);
      } else {
        out += turns[i].content + "</s>";
      }
    }
    return out;
  }
};

// Gemma: <bos><start_of_turn>user\n...<end_of_turn>\n with "assistant" written as "model";
// a system message becomes the start of the first user turn.
class GemmaTemplate final : public ChatTemplate {
 public:
  std::string_view name() const override { return "gemma"; }
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const override {
    const bool has_system = !messages.empty() && messages[0].role == "system";
    const std::vector<ChatMessage> turns(messages.begin() + (has_system ? 1 : 0), messages.end());
    check_alternating(turns, name());
    std::string out = "<bos>";
    for (size_t i = 0; i < turns.size(); ++i) {
      const std::string_view role = turns[i].role == "assistant" ? "model" : "user";
      const std::string prefix = (i == 0 && has_system) ? messages[0].content + "\n\n" : std::string();
      out += fmt::format("<start_of_turn>{}\n{}<end_of_turn>\n", role, prefix + trim(turns[i].content));
    }
    if (add_generation_prompt) out += "<start_of_turn>model\n";
    return out;
  }
};

}  // namespace

std::unique_ptr<ChatTemplate> chat_template_by_name(std::string_view name) {
  if (name == "chatml") return std::make_unique<ChatMlTemplate>();
  if (name == "llama3") return std::make_unique<Llama3Template>();
  if (name == "mistral") return std::make_unique<MistralTemplate>();
  if (name == "gemma") return std::make_unique<GemmaTemplate>();
  raise<InvalidArgument>("unknown chat template '{}'; known: chatml, llama3, mistral, gemma", name);
}

std::string chat_template_name_for(const std::optional<std::string>& template_text,
                                   const std::optional<std::string>& architecture) {
  if (template_text) {
    if (template_text->find("<|im_start|>") != std::string::npos) return "chatml";
    if (template_text->find("<|start_header_id|>") != std::string::npos) return "llama3";
    if (template_text->find("<start_of_turn>") != std::string::npos) return "gemma";
    if (template_text->find("[INST]") != std::string::npos) return "mistral";
  }
  if (architecture) {
    if (architecture->starts_with("gemma")) return "gemma";
    if (*architecture == "mistral") return "mistral";
    if (*architecture == "qwen2" || *architecture == "qwen3") return "chatml";
  }
  raise<InvalidArgument>("no chat template fits this model: tokenizer.chat_template {} and general.architecture '{}' "
                         "name none of chatml, llama3, mistral, gemma; pick one by name",
                         template_text ? "has no known markers" : "is absent", architecture.value_or(""));
}

}  // namespace stepdown::text
