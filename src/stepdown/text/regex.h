#pragma once
// A compiled PCRE2 pattern in UTF mode with Unicode properties (PCRE2_UTF | PCRE2_UCP),
// JIT-compiled when the library supports it. Pre-tokenizer regexes of tokenizer.json run
// through it.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace stepdown::text {

class Regex {
 public:
  // Throws InvalidArgument naming the pattern and PCRE2's message at the failing offset.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [begin, end) of the successive non-overlapping matches in `text`, which
  // must be valid UTF-8. An empty match advances the search by one character.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace stepdown::text
