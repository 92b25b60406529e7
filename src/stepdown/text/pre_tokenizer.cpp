// Pre-tokenizers of the tokenizer pipeline (tokenizer.json "pre_tokenizer").
#include "stepdown/text/pipeline.h"
#include "stepdown/text/regex.h"
#include "stepdown/text/utf8.h"

namespace stepdown::text {
namespace {

struct Span {
  size_t begin, end;
  bool is_match;
};

// Cuts `text` into pieces around `matches` as tokenizers' split behaviours do.
std::vector<std::string> split_by_matches(const std::string& text, const std::vector<std::pair<size_t, size_t>>& matches,
                                          SplitBehavior behavior, bool invert) {
  std::vector<Span> spans;
  size_t last = 0;
  for (const auto& [begin, end] : matches) {
    if (begin > last) spans.push_back({last, begin, invert});
    spans.push_back({begin, end, !invert});
    last = end;
  }
  if (last < text.size()) spans.push_back({last, text.size(), invert});

  std::vector<std::string> pieces;
  bool previous_was_match = false;
  bool attach_to_next = false;
  for (const Span& span : spans) {
    std::string piece = text.substr(span.begin, span.end - span.begin);
    switch (behavior) {
      case SplitBehavior::Removed:
        if (!span.is_match) pieces.push_back(std::move(piece));
        break;
      case SplitBehavior::Isolated:
        pieces.push_back(std::move(piece));
        break;
      case SplitBehavior::MergedWithPrevious:
        if (span.is_match && !pieces.empty() && !previous_was_match) {
          pieces.back() += piece;
        } else {
          pieces.push_back(std::move(piece));
        }
        break;
      case SplitBehavior::MergedWithNext:
        if (attach_to_next) {
          pieces.back() += piece;
        } else {
          pieces.push_back(std::move(piece));
        }
        attach_to_next = span.is_match;
        break;
      case SplitBehavior::Contiguous:
        if (span.is_match && previous_was_match && !pieces.empty()) {
          pieces.back() += piece;
        } else {
          pieces.push_back(std::move(piece));
        }
        break;
    }
    previous_was_match = span.is_match;
  }
  return pieces;
}

// Replaces every word by the pieces `split` makes of it; the first piece keeps at_start.
template <class SplitFn>
void split_words(std::vector<Segment>& words, SplitFn split) {
  std::vector<Segment> out;
  out.reserve(words.size());
  for (Segment& word : words) {
    bool first = true;
    for (std::string& piece : split(word)) {
      if (piece.empty()) continue;
      out.push_back({std::move(piece), word.at_start && first});
      first = false;
    }
  }
  words = std::move(out);
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(const std::string& pattern, SplitBehavior behavior, bool invert)
      : regex_(pattern), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Segment>& words) const override {
    split_words(words, [&](const Segment& word) {
      return split_by_matches(word.text, regex_.find_all(word.text), behavior_, invert_);
    });
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern);
  }
  void pre_tokenize(std::vector<Segment>& words) const override {
    if (add_prefix_space_) {
      for (Segment& word : words) {
        if (!word.text.starts_with(' ')) word.text.insert(0, " ");
      }
    }
    if (regex_) {
      split_words(words, [&](const Segment& word) {
        return split_by_matches(word.text, regex_->find_all(word.text), SplitBehavior::Isolated, false);
      });
    }
    const auto& table = byte_to_unicode();
    for (Segment& word : words) {
      std::string mapped;
      mapped.reserve(word.text.size() * 2);
      for (unsigned char byte : word.text) append_utf8(mapped, table[byte]);
      word.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual)
      : regex_(individual ? R"(\p{N})" : R"(\p{N}+)") {}
  void pre_tokenize(std::vector<Segment>& words) const override {
    split_words(words, [&](const Segment& word) {
      return split_by_matches(word.text, regex_.find_all(word.text), SplitBehavior::Isolated, false);
    });
  }

 private:
  Regex regex_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Segment>& words) const override {
    for (Segment& word : words) {
      std::string out;
      for (char c : word.text) {
        if (c == ' ') {
          out += replacement_;
        } else {
          out += c;
        }
      }
      const bool prepend = scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && word.at_start);
      if (prepend && !out.starts_with(replacement_)) out.insert(0, replacement_);
      word.text = std::move(out);
    }
    if (!split_) return;
    split_words(words, [&](const Segment& word) {
      std::vector<std::pair<size_t, size_t>> matches;
      for (size_t pos = word.text.find(replacement_); pos != std::string::npos;
           pos = word.text.find(replacement_, pos + replacement_.size())) {
        matches.emplace_back(pos, pos + replacement_.size());
      }
      return split_by_matches(word.text, matches, SplitBehavior::MergedWithNext, false);
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class PreTokenizerSequence final : public PreTokenizer {
 public:
  explicit PreTokenizerSequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Segment>& words) const override {
    for (const auto& step : steps_) step->pre_tokenize(words);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(const std::string& regex, SplitBehavior behavior, bool invert) {
  return std::make_unique<SplitPreTokenizer>(regex, behavior, invert);
}

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex);
}

std::unique_ptr<PreTokenizer> make_digits_pre_tokenizer(bool individual_digits) {
  return std::make_unique<DigitsPreTokenizer>(individual_digits);
}

std::unique_ptr<PreTokenizer> make_metaspace_pre_tokenizer(std::string replacement, PrependScheme scheme, bool split) {
  return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer_sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) {
  return std::make_unique<PreTokenizerSequence>(std::move(steps));
}

}  // namespace stepdown::text
