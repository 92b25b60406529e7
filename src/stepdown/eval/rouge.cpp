// ROUGE as rouge-score 0.1.2 computes it. Tokens are interned to integer ids before
// counting so n-grams and LCS compare integers; the arithmetic of every score is the
// same sequence of double operations as rouge-score's, so results are bit-identical.
#include "stepdown/eval/rouge.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <unordered_map>

#include "stepdown/core/error.h"
#include "stepdown/eval/porter_stemmer.h"

namespace stepdown::eval {
namespace {

using TokenIds = std::vector<int32_t>;

// Maps token strings to dense ids shared by the target and the prediction.
class TokenInterner {
 public:
  TokenIds intern(const std::vector<std::string>& tokens) {
    TokenIds ids;
    ids.reserve(tokens.size());
    for (const std::string& token : tokens) {
      auto [it, inserted] = ids_.try_emplace(token, static_cast<int32_t>(ids_.size()));
      ids.push_back(it->second);
    }
    return ids;
  }
  size_t size() const { return ids_.size(); }

 private:
  std::unordered_map<std::string, int32_t> ids_;
};

double fmeasure(double precision, double recall) {
  // Same operation order as rouge-score's scoring.fmeasure, for identical rounding.
  if (precision + recall > 0) return 2 * precision * recall / (precision + recall);
  return 0.0;
}

// lcs[i][j]: LCS length of ref[0, i) and can[0, j); table (rows + 1, cols + 1).
std::vector<std::vector<int32_t>> lcs_table(const TokenIds& ref, const TokenIds& can) {
  std::vector<std::vector<int32_t>> table(ref.size() + 1, std::vector<int32_t>(can.size() + 1, 0));
  for (size_t i = 1; i <= ref.size(); ++i) {
    for (size_t j = 1; j <= can.size(); ++j) {
      if (ref[i - 1] == can[j - 1]) {
        table[i][j] = table[i - 1][j - 1] + 1;
      } else {
        table[i][j] = std::max(table[i - 1][j], table[i][j - 1]);
      }
    }
  }
  return table;
}

// LCS length in O(cols) memory.
int32_t lcs_length(const TokenIds& ref, const TokenIds& can) {
  std::vector<int32_t> previous(can.size() + 1, 0);
  std::vector<int32_t> current(can.size() + 1, 0);
  for (size_t i = 1; i <= ref.size(); ++i) {
    for (size_t j = 1; j <= can.size(); ++j) {
      current[j] = ref[i - 1] == can[j - 1] ? previous[j - 1] + 1 : std::max(previous[j], current[j - 1]);
    }
    std::swap(previous, current);
  }
  return previous[can.size()];
}

// Indices into `ref` of one LCS with `can`. Ties go the way rouge-score's backtrack goes
// (move along `ref` unless moving along `can` keeps a strictly longer LCS); the union
// LCS of ROUGE-Lsum depends on which LCS is chosen.
std::vector<size_t> lcs_indices(const TokenIds& ref, const TokenIds& can) {
  const std::vector<std::vector<int32_t>> table = lcs_table(ref, can);
  std::vector<size_t> indices;
  size_t i = ref.size();
  size_t j = can.size();
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      indices.push_back(i - 1);
      --i;
      --j;
    } else if (table[i][j - 1] > table[i - 1][j]) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(indices.begin(), indices.end());
  return indices;
}

std::map<TokenIds, int64_t> count_ngrams(const TokenIds& tokens, size_t n) {
  std::map<TokenIds, int64_t> counts;
  for (size_t i = 0; i + n <= tokens.size(); ++i) {
    ++counts[TokenIds(tokens.begin() + static_cast<ptrdiff_t>(i), tokens.begin() + static_cast<ptrdiff_t>(i + n))];
  }
  return counts;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (true) {
    const size_t end = text.find('\n', start);
    const std::string_view line = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!line.empty()) lines.push_back(line);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return lines;
}

}  // namespace

std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer) {
  // Python's str.lower() followed by replacing [^a-z0-9]+ with a space. Only two
  // non-ASCII code points lowercase to ASCII letters (Unicode 14, Python 3.11):
  // U+0130 'İ' -> "i" + U+0307, and U+212A KELVIN SIGN -> "k". Every other non-ASCII
  // byte, valid UTF-8 or not, ends up a separator.
  std::string mapped;
  mapped.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 'A' && byte <= 'Z') {
      mapped.push_back(static_cast<char>(byte - 'A' + 'a'));
    } else if ((byte >= 'a' && byte <= 'z') || (byte >= '0' && byte <= '9')) {
      mapped.push_back(static_cast<char>(byte));
    } else if (text.substr(i, 2) == "\xC4\xB0") {
      mapped += "i ";
      i += 1;
    } else if (text.substr(i, 3) == "\xE2\x84\xAA") {
      mapped.push_back('k');
      i += 2;
    } else {
      mapped.push_back(' ');
    }
  }

  std::vector<std::string> tokens;
  size_t start = 0;
  while (start < mapped.size()) {
    if (mapped[start] == ' ') {
      ++start;
      continue;
    }
    size_t end = mapped.find(' ', start);
    if (end == std::string::npos) end = mapped.size();
    std::string token = mapped.substr(start, end - start);
    // rouge-score stems only tokens longer than 3 characters.
    if (use_stemmer && token.size() > 3) token = porter_stem(token);
    if (!token.empty()) tokens.push_back(std::move(token));
    start = end;
  }
  return tokens;
}

RougeScore rouge_n(std::string_view target, std::string_view prediction, int n, bool use_stemmer) {
  if (n < 1) raise<InvalidArgument>("ROUGE-N needs n >= 1, got n = {}", n);
  TokenInterner interner;
  const TokenIds target_ids = interner.intern(rouge_tokenize(target, use_stemmer));
  const TokenIds prediction_ids = interner.intern(rouge_tokenize(prediction, use_stemmer));
  const std::map<TokenIds, int64_t> target_counts = count_ngrams(target_ids, static_cast<size_t>(n));
  const std::map<TokenIds, int64_t> prediction_counts = count_ngrams(prediction_ids, static_cast<size_t>(n));

  int64_t overlap = 0;
  for (const auto& [ngram, count] : target_counts) {
    auto it = prediction_counts.find(ngram);
    if (it != prediction_counts.end()) overlap += std::min(count, it->second);
  }
  int64_t target_total = 0;
  for (const auto& entry : target_counts) target_total += entry.second;
  int64_t prediction_total = 0;
  for (const auto& entry : prediction_counts) prediction_total += entry.second;

  RougeScore score;
  score.precision = static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(prediction_total, 1));
  score.recall = static_cast<double>(overlap) / static_cast<double>(std::max<int64_t>(target_total, 1));
  score.fmeasure = fmeasure(score.precision, score.recall);
  return score;
}

RougeScore rouge_l(std::string_view target, std::string_view prediction, bool use_stemmer) {
  TokenInterner interner;
  const TokenIds target_ids = interner.intern(rouge_tokenize(target, use_stemmer));
  const TokenIds prediction_ids = interner.intern(rouge_tokenize(prediction, use_stemmer));
  if (target_ids.empty() || prediction_ids.empty()) return {};

  const auto lcs = static_cast<double>(lcs_length(target_ids, prediction_ids));
  RougeScore score;
  score.precision = lcs / static_cast<double>(prediction_ids.size());
  score.recall = lcs / static_cast<double>(target_ids.size());
  score.fmeasure = fmeasure(score.precision, score.recall);
  return score;
}

RougeScore rouge_lsum(std::string_view target, std::string_view prediction, bool use_stemmer) {
  TokenInterner interner;
  std::vector<TokenIds> target_sentences;
  for (std::string_view line : split_lines(target)) target_sentences.push_back(interner.intern(rouge_tokenize(line, use_stemmer)));
  std::vector<TokenIds> prediction_sentences;
  for (std::string_view line : split_lines(prediction)) {
    prediction_sentences.push_back(interner.intern(rouge_tokenize(line, use_stemmer)));
  }
  if (target_sentences.empty() || prediction_sentences.empty()) return {};

  // Token budgets: a token can be a hit at most as often as it occurs in both texts.
  std::vector<int64_t> target_counts(interner.size(), 0);
  std::vector<int64_t> prediction_counts(interner.size(), 0);
  size_t target_total = 0;
  size_t prediction_total = 0;
  for (const TokenIds& sentence : target_sentences) {
    for (int32_t id : sentence) ++target_counts[static_cast<size_t>(id)];
    target_total += sentence.size();
  }
  for (const TokenIds& sentence : prediction_sentences) {
    for (int32_t id : sentence) ++prediction_counts[static_cast<size_t>(id)];
    prediction_total += sentence.size();
  }
  if (target_total == 0 || prediction_total == 0) return {};

  int64_t hits = 0;
  for (const TokenIds& reference : target_sentences) {
    // Union LCS: target positions covered by an LCS with any prediction sentence.
    std::vector<bool> in_union(reference.size(), false);
    for (const TokenIds& candidate : prediction_sentences) {
      for (size_t index : lcs_indices(reference, candidate)) in_union[index] = true;
    }
    for (size_t index = 0; index < reference.size(); ++index) {
      if (!in_union[index]) continue;
      const auto id = static_cast<size_t>(reference[index]);
      if (prediction_counts[id] > 0 && target_counts[id] > 0) {
        ++hits;
        --prediction_counts[id];
        --target_counts[id];
      }
    }
  }

  RougeScore score;
  score.recall = static_cast<double>(hits) / static_cast<double>(target_total);
  score.precision = static_cast<double>(hits) / static_cast<double>(prediction_total);
  score.fmeasure = fmeasure(score.precision, score.recall);
  return score;
}

}  // namespace stepdown::eval
