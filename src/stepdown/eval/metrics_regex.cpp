// The PCRE2 wrapper and the `regex` metric.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "stepdown/eval/metrics_regex.h"

#include <pcre2.h>

#include "stepdown/core/error.h"
#include "stepdown/eval/metrics.h"
#include "stepdown/eval/metrics_builtin.h"
#include "stepdown/eval/suite.h"

namespace stepdown::eval {

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset,
                                   nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    raise<InvalidArgument>("invalid regular expression '{}': {} at offset {}", pattern,
                           reinterpret_cast<const char*>(message), error_offset);
  }
  code_.reset(code, pcre2_code_free);
}

bool Regex::match(std::string_view text, uint32_t options) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match_data(
      pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
  if (!match_data) raise("PCRE2 could not allocate match data for '{}'", pattern_);
  const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, options,
                             match_data.get(), nullptr);
  if (rc >= 0) return true;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(rc, message, sizeof(message));
  raise("matching '{}' failed: {}", pattern_, reinterpret_cast<const char*>(message));
}

bool Regex::search(std::string_view text) const { return match(text, 0); }

bool Regex::full_match(std::string_view text) const { return match(text, PCRE2_ANCHORED | PCRE2_ENDANCHORED); }

std::string Regex::replace_all(std::string_view text, std::string_view replacement) const {
  std::string output(text.size() + 16, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    PCRE2_SIZE length = output.size();
    const int rc = pcre2_substitute(
        code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
        PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_LITERAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, nullptr, nullptr,
        reinterpret_cast<PCRE2_SPTR>(replacement.data()), replacement.size(),
        reinterpret_cast<PCRE2_UCHAR*>(output.data()), &length);
    if (rc >= 0) {
      output.resize(length);
      return output;
    }
    if (rc != PCRE2_ERROR_NOMEMORY) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      raise("replacing matches of '{}' failed: {}", pattern_, reinterpret_cast<const char*>(message));
    }
    // With OVERFLOW_LENGTH, `length` is now the size the output needs.
    output.resize(length);
  }
  raise("replacing matches of '{}' failed: output buffer still too small", pattern_);
}

namespace {

std::string_view trim_ascii_whitespace(std::string_view text) {
  constexpr std::string_view kWhitespace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

// 1 when the item's `pattern` matches the prediction: the whole prediction with leading
// and trailing whitespace removed (pattern_mode "full", the default), or anywhere in it
// ("search").
class RegexMetric final : public Metric {
 public:
  std::string_view name() const override { return "regex"; }
  bool needs_reference() const override { return false; }

  void check_item(const SuiteItem& item) const override {
    if (!item.pattern) raise<InvalidArgument>("field 'pattern': missing; the regex metric needs a pattern");
    try {
      Regex{*item.pattern};
    } catch (const InvalidArgument& e) {
      raise<InvalidArgument>("field 'pattern': {}", e.what());
    }
  }

  double score(std::string_view prediction, const SuiteItem& item) const override {
    check_item(item);
    const Regex regex(*item.pattern);
    if (item.pattern_mode == PatternMode::kSearch) return regex.search(prediction) ? 1.0 : 0.0;
    return regex.full_match(trim_ascii_whitespace(prediction)) ? 1.0 : 0.0;
  }
};

}  // namespace

std::unique_ptr<Metric> make_regex_metric(const MetricOptions&) { return std::make_unique<RegexMetric>(); }

}  // namespace stepdown::eval
