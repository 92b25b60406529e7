#pragma once
// Regular expressions for metrics, suite rules and JSON Schema `pattern`: PCRE2 with
// UTF-8 and Unicode properties (\w, \d, \b and case folding follow Unicode). Text that
// is not valid UTF-8, as a byte-level model can emit, is matched, never rejected.
#include <memory>
#include <string>
#include <string_view>

struct pcre2_real_code_8;

namespace stepdown::eval {

class Regex {
 public:
  // Compiles `pattern`. Throws InvalidArgument with PCRE2's message and the offset.
  explicit Regex(std::string_view pattern);

  // True when the pattern matches anywhere in `text`.
  bool search(std::string_view text) const;
  // True when the pattern matches the whole of `text`.
  bool full_match(std::string_view text) const;
  // Returns `text` with every match replaced by `replacement` (taken literally).
  std::string replace_all(std::string_view text, std::string_view replacement) const;

  const std::string& pattern() const { return pattern_; }

 private:
  bool match(std::string_view text, uint32_t options) const;

  std::string pattern_;
  std::shared_ptr<pcre2_real_code_8> code_;
};

}  // namespace stepdown::eval
