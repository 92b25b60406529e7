#include "stepdown/text/tokenizer.h"
#include "stepdown/text/utf8.h"

namespace stepdown::text {

std::string StreamDecoder::push(TokenId id) {
  std::string bytes = tokenizer_.token_bytes(id);
  if (tokenizer_.is_special(id)) {
    // A special token (BOS, end of turn) is not text: it neither shows nor ends the
    // leading-space rule for the first piece.
    return {};
  }
  if (first_) {
    if (tokenizer_.decode_strips_leading_space() && bytes.starts_with(' ')) bytes.erase(0, 1);
    first_ = bytes.empty();
  }
  pending_ += bytes;
  const size_t complete = complete_utf8_prefix(pending_);
  std::string out = sanitize_utf8(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace stepdown::text
