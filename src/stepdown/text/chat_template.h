#pragma once
// Chat templates for the model families stepdown runs, written as code rather than by
// running the Jinja text a model ships: ChatML (SmolLM2, Qwen), Llama 3, Mistral, Gemma.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stepdown::io {
class Metadata;
}

namespace stepdown::text {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  virtual ~ChatTemplate() = default;
  // "chatml", "llama3", "mistral" or "gemma".
  virtual std::string_view name() const = 0;
  // The prompt text for `messages`, ending with the assistant's turn header when
  // add_generation_prompt is set. Throws InvalidArgument naming the role and the template
  // when a message's role cannot be expressed (never merges it silently).
  virtual std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const = 0;
};

// The template named `name`; throws InvalidArgument listing the known names.
std::unique_ptr<ChatTemplate> chat_template_by_name(std::string_view name);
// The name of the template that fits a model: recognized from the markers in its Jinja
// chat template text when given ("<|im_start|>", "<|start_header_id|>", "[INST]",
// "<start_of_turn>"), else from its general.architecture. Throws InvalidArgument when
// neither identifies one.
std::string chat_template_name_for(const std::optional<std::string>& template_text,
                                   const std::optional<std::string>& architecture);
// The template that fits a model, from tokenizer.chat_template when present, else from
// general.architecture; throws InvalidArgument when neither identifies one.
std::unique_ptr<ChatTemplate> chat_template_for(const io::Metadata& metadata);

}  // namespace stepdown::text
