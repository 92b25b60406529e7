#define PCRE2_CODE_UNIT_WIDTH 8
#include "stepdown/text/regex.h"

#include <memory>

#include <pcre2.h>

#include "stepdown/core/error.h"
#include "stepdown/text/utf8.h"

namespace stepdown::text {

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(), PCRE2_UTF | PCRE2_UCP,
                        &error_code, &error_offset, nullptr);
  if (code_ == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    raise<InvalidArgument>("invalid pre-tokenizer regex '{}' at offset {}: {}", pattern_, error_offset,
                           reinterpret_cast<const char*>(message));
  }
  // JIT is an optimization only: without it pcre2_match interprets the same pattern.
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(code_); }

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    // The caller validated the text, so PCRE2 need not check it again on every call.
    const int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, data.get(), nullptr)
                        : pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      raise<Error>("pre-tokenizer regex '{}' failed at byte {}: {}", pattern_, offset,
                   reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      offset = end;
    } else {
      if (begin >= text.size()) break;
      offset = begin + utf8_sequence_length(static_cast<unsigned char>(text[begin]));
    }
  }
  return matches;
}

}  // namespace stepdown::text
