#pragma once
// Answer normalisation for exact_match and f1, following SQuAD's evaluation script and
// HF evaluate: lowercase, remove ASCII punctuation, remove the articles a/an/the as whole
// words, collapse whitespace, applied in that order.
#include <string>
#include <string_view>
#include <vector>

namespace stepdown::eval {

struct TextNormalization {
  bool lowercase = true;            // Unicode simple lowercase mapping
  bool strip_punctuation = true;    // the 32 ASCII punctuation characters of Python's string.punctuation
  bool strip_articles = true;       // \b(a|an|the)\b, case-sensitive: combine with lowercase
  bool collapse_whitespace = true;  // trim, and runs of Unicode whitespace become one space

  // Every step off: compare text as it is.
  static TextNormalization none();
  // Parses "none", "squad" (every step) or a comma-separated list of steps:
  // lowercase, punctuation, articles, whitespace. Throws InvalidArgument otherwise.
  static TextNormalization parse(std::string_view spec);
};

// Applies the enabled steps of `options` to `text`.
std::string normalize_text(std::string_view text, const TextNormalization& options);

// Splits on runs of Unicode whitespace, like Python's str.split() with no argument.
std::vector<std::string> split_whitespace(std::string_view text);

}  // namespace stepdown::eval
