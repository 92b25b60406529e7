// Normalizers of the tokenizer pipeline (tokenizer.json "normalizer").
#include <cstdlib>

#include <utf8proc.h>

#include "stepdown/core/error.h"
#include "stepdown/text/pipeline.h"
#include "stepdown/text/regex.h"
#include "stepdown/text/utf8.h"

namespace stepdown::text {
namespace {

// Prepends a prefix to a non-empty segment. With only_at_start it does so only for the
// segment at the start of the input: that is SentencePiece's behaviour when Llama's
// `legacy` flag is false, where text after a special token gets no dummy prefix.
class PrependNormalizer final : public Normalizer {
 public:
  PrependNormalizer(std::string prefix, bool only_at_start) : prefix_(std::move(prefix)), only_at_start_(only_at_start) {}
  void normalize(Segment& segment) const override {
    if (segment.text.empty() || (only_at_start_ && !segment.at_start)) return;
    segment.text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
  bool only_at_start_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string pattern, bool is_regex, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {
    if (is_regex) regex_ = std::make_unique<Regex>(pattern_);
  }
  void normalize(Segment& segment) const override {
    std::string out;
    size_t last = 0;
    if (regex_) {
      for (const auto& [begin, end] : regex_->find_all(segment.text)) {
        out.append(segment.text, last, begin - last);
        out += content_;
        last = end;
      }
    } else if (!pattern_.empty()) {
      for (size_t pos = segment.text.find(pattern_); pos != std::string::npos;
           pos = segment.text.find(pattern_, last)) {
        out.append(segment.text, last, pos - last);
        out += content_;
        last = pos + pattern_.size();
      }
    }
    out.append(segment.text, last);
    segment.text = std::move(out);
  }

 private:
  std::string pattern_;
  std::string content_;
  std::unique_ptr<Regex> regex_;
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(Segment& segment) const override {
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t length =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(segment.text.data()),
                     static_cast<utf8proc_ssize_t>(segment.text.size()), &mapped,
                     static_cast<utf8proc_option_t>(options_));
    if (length < 0) {
      raise<InvalidArgument>("Unicode normalization failed: {}", utf8proc_errmsg(length));
    }
    segment.text.assign(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length));
    std::free(mapped);
  }

 private:
  int options_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(Segment& segment) const override {
    const std::string& text = segment.text;
    size_t begin = 0, end = text.size();
    if (left_) {
      size_t pos = 0;
      while (pos < text.size()) {
        const size_t start = pos;
        const auto cp = next_code_point(text, pos);
        if (!cp || !is_white_space(*cp)) {
          begin = start;
          break;
        }
        begin = pos;
      }
    }
    if (right_) {
      size_t pos = begin, last_kept = begin;
      while (pos < text.size()) {
        const auto cp = next_code_point(text, pos);
        if (!cp || !is_white_space(*cp)) last_kept = pos;
      }
      end = last_kept;
    }
    segment.text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(Segment& segment) const override {
    std::string out;
    size_t pos = 0;
    while (pos < segment.text.size()) {
      const size_t start = pos;
      const auto cp = next_code_point(segment.text, pos);
      if (cp) {
        append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(*cp))));
      } else {
        out.append(segment.text, start, pos - start);
      }
    }
    segment.text = std::move(out);
  }
};

class NormalizerSequence final : public Normalizer {
 public:
  explicit NormalizerSequence(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(Segment& segment) const override {
    for (const auto& step : steps_) step->normalize(segment);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prefix, bool only_at_start) {
  return std::make_unique<PrependNormalizer>(std::move(prefix), only_at_start);
}

std::unique_ptr<Normalizer> make_replace_normalizer(std::string pattern, bool pattern_is_regex, std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(pattern), pattern_is_regex, std::move(content));
}

std::unique_ptr<Normalizer> make_unicode_normalizer(const std::string& form) {
  int options = UTF8PROC_STABLE;
  if (form == "NFC") {
    options |= UTF8PROC_COMPOSE;
  } else if (form == "NFKC") {
    options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
  } else if (form == "NFD") {
    options |= UTF8PROC_DECOMPOSE;
  } else if (form == "NFKD") {
    options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  } else {
    raise<InvalidArgument>("unknown Unicode normalization form '{}': expected NFC, NFKC, NFD or NFKD", form);
  }
  return std::make_unique<UnicodeNormalizer>(options);
}

std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right) {
  return std::make_unique<StripNormalizer>(left, right);
}

std::unique_ptr<Normalizer> make_lowercase_normalizer() { return std::make_unique<LowercaseNormalizer>(); }

std::unique_ptr<Normalizer> make_normalizer_sequence(std::vector<std::unique_ptr<Normalizer>> steps) {
  return std::make_unique<NormalizerSequence>(std::move(steps));
}

}  // namespace stepdown::text
