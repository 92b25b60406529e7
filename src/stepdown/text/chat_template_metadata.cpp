#include "stepdown/io/metadata.h"
#include "stepdown/text/chat_template.h"

namespace stepdown::text {

std::unique_ptr<ChatTemplate> chat_template_for(const io::Metadata& metadata) {
  return chat_template_by_name(chat_template_name_for(metadata.get_string("tokenizer.chat_template"),
                                                      metadata.get_string("general.architecture")));
}

}  // namespace stepdown::text
