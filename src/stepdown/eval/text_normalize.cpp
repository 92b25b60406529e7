#include "stepdown/eval/text_normalize.h"

#include <utf8proc.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics_regex.h"

namespace stepdown::eval {
namespace {

// The code points for which Python 3.11's str.isspace() is true.
bool is_python_whitespace(int32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Calls visit(code_point, bytes) for each UTF-8 character of `text`; a byte that does not
// start a valid sequence is passed alone with code point -1.
template <class Visit>
void for_each_code_point(std::string_view text, Visit&& visit) {
  size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t code_point = -1;
    utf8proc_ssize_t length =
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + offset),
                         static_cast<utf8proc_ssize_t>(text.size() - offset), &code_point);
    if (length <= 0) {
      code_point = -1;
      length = 1;
    }
    visit(code_point, text.substr(offset, static_cast<size_t>(length)));
    offset += static_cast<size_t>(length);
  }
}

std::string to_lower(std::string_view text) {
  std::string output;
  output.reserve(text.size());
  for_each_code_point(text, [&](int32_t code_point, std::string_view bytes) {
    if (code_point < 0) {
      output += bytes;
      return;
    }
    utf8proc_uint8_t encoded[4];
    const utf8proc_ssize_t length = utf8proc_encode_char(utf8proc_tolower(code_point), encoded);
    output.append(reinterpret_cast<const char*>(encoded), static_cast<size_t>(length));
  });
  return output;
}

bool is_ascii_punctuation(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

}  // namespace

TextNormalization TextNormalization::none() { return {false, false, false, false}; }

TextNormalization TextNormalization::parse(std::string_view spec) {
  if (spec == "squad") return {};
  TextNormalization options = none();
  if (spec == "none") return options;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string_view::npos) end = spec.size();
    const std::string_view step = spec.substr(start, end - start);
    if (step == "lowercase") {
      options.lowercase = true;
    } else if (step == "punctuation") {
      options.strip_punctuation = true;
    } else if (step == "articles") {
      options.strip_articles = true;
    } else if (step == "whitespace") {
      options.collapse_whitespace = true;
    } else {
      raise<InvalidArgument>(
          "invalid normalization step '{}' in '{}'; expected none, squad, or a comma-separated list of "
          "lowercase, punctuation, articles, whitespace",
          step, spec);
    }
    start = end + 1;
  }
  return options;
}

std::string normalize_text(std::string_view text, const TextNormalization& options) {
  std::string output(text);
  if (options.lowercase) output = to_lower(output);
  if (options.strip_punctuation) std::erase_if(output, is_ascii_punctuation);
  if (options.strip_articles) {
    static const Regex kArticles("\\b(?:a|an|the)\\b");
    output = kArticles.replace_all(output, " ");
  }
  if (options.collapse_whitespace) {
    std::string collapsed;
    for (const std::string& word : split_whitespace(output)) {
      if (!collapsed.empty()) collapsed.push_back(' ');
      collapsed += word;
    }
    output = std::move(collapsed);
  }
  return output;
}

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for_each_code_point(text, [&](int32_t code_point, std::string_view bytes) {
    if (code_point >= 0 && is_python_whitespace(code_point)) {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
    } else {
      current += bytes;
    }
  });
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

}  // namespace stepdown::eval
