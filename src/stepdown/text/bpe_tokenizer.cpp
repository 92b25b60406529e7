#include "stepdown/text/bpe_tokenizer.h"

#include <algorithm>
#include <queue>

#include <fmt/format.h>
#include <utf8proc.h>

#include "stepdown/core/error.h"
#include "stepdown/text/utf8.h"

namespace stepdown::text {
namespace {

uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

std::string byte_piece(uint8_t byte) { return fmt::format("<0x{:02X}>", byte); }

// The code point that ends just before `pos`, or nullopt at the start or on invalid bytes.
std::optional<char32_t> code_point_before(std::string_view text, size_t pos, size_t& start) {
  if (pos == 0) return std::nullopt;
  start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t cursor = start;
  const auto cp = next_code_point(text, cursor);
  if (cursor != pos) return std::nullopt;
  return cp;
}

// A character of the regex class \w in its Unicode form (letters, marks, decimal digits,
// connector punctuation, joiners), which single_word tokens may not touch. Other numbers
// such as '²' do not count, matching tokenizers 0.23.
bool is_word_character(char32_t cp) {
  if (cp == 0x200C || cp == 0x200D) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeSpec spec) : spec_(std::move(spec)) {
  const auto size = static_cast<TokenId>(spec_.pieces.size());
  std::vector<bool> added_only(spec_.pieces.size(), false);
  for (const AddedToken& token : spec_.added_tokens) {
    check_id(token.id);
    if (!token.in_model_vocab) added_only[token.id] = true;
  }
  vocab_.reserve(spec_.pieces.size());
  all_pieces_.reserve(spec_.pieces.size());
  for (TokenId id = 0; id < size; ++id) {  // the first id wins on duplicates
    all_pieces_.emplace(spec_.pieces[id], id);
    if (!added_only[id]) vocab_.emplace(spec_.pieces[id], id);
  }

  if (spec_.merge_order == MergeOrder::Rank) {
    merges_.reserve(spec_.merges.size());
    for (size_t rank = 0; rank < spec_.merges.size(); ++rank) {
      const auto& [left, right] = spec_.merges[rank];
      const auto left_it = vocab_.find(left), right_it = vocab_.find(right), merged_it = vocab_.find(left + right);
      if (left_it == vocab_.end() || right_it == vocab_.end() || merged_it == vocab_.end()) {
        raise<FormatError>("BPE merge {} ('{} {}') names a token missing from the vocabulary", rank, left, right);
      }
      merges_.emplace(pair_key(left_it->second, right_it->second), Merge{static_cast<double>(rank), merged_it->second});
    }
  } else if (spec_.scores.size() != spec_.pieces.size()) {
    raise<FormatError>("BPE vocabulary has {} tokens but {} scores; merging by score needs one per token",
                       spec_.pieces.size(), spec_.scores.size());
  }

  byte_ids_.assign(256, -1);
  for (int byte = 0; byte < 256; ++byte) {
    const auto it = vocab_.find(byte_piece(static_cast<uint8_t>(byte)));
    if (it != vocab_.end()) byte_ids_[byte] = it->second;
  }

  special_.assign(spec_.pieces.size(), 0);
  for (size_t i = 0; i < spec_.added_tokens.size(); ++i) {
    const AddedToken& token = spec_.added_tokens[i];
    added_index_[token.id] = i;
    if (token.special) special_[token.id] = 1;
    if (!spec_.match_added_tokens || token.content.empty()) continue;
    // A normalized=true token is looked for in normalized text, so in its normalized form.
    Segment content{token.content, true};
    if (token.normalized && spec_.normalizer) spec_.normalizer->normalize(content);
    // tokenizers also decodes such a token from its normalized form.
    if (token.normalized) added_normalized_content_[token.id] = content.text;
    if (content.text.empty()) continue;
    AddedTokenTable& table = token.normalized ? normalized_added_ : raw_added_;
    if (table.empty()) table.resize(256);
    table[static_cast<unsigned char>(content.text[0])].emplace_back(content.text, i);
  }
  for (AddedTokenTable* table : {&raw_added_, &normalized_added_}) {
    for (auto& candidates : *table) {
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    }
  }
}

void BpeTokenizer::check_id(TokenId id) const {
  if (id < 0 || id >= vocab_size()) {
    raise<InvalidArgument>("token id {} is outside the vocabulary of {} tokens", id, vocab_size());
  }
}

std::vector<TokenId> BpeTokenizer::encode(std::string_view text, bool add_special) const {
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    raise<InvalidArgument>("text to tokenize is not valid UTF-8 at byte {}", bad);
  }
  std::vector<TokenId> ids;
  if (add_special) ids = spec_.prefix_ids;

  // Tokens with normalized=false are found in the raw text. Each segment between them is
  // normalized, then split on the normalized=true tokens, as tokenizers does.
  split_on_added_tokens(text, true, raw_added_, ids, [&](std::string_view segment, bool at_start) {
    Segment normalized{std::string(segment), at_start};
    if (spec_.normalizer) spec_.normalizer->normalize(normalized);
    split_on_added_tokens(normalized.text, at_start, normalized_added_, ids,
                          [&](std::string_view part, bool part_at_start) { encode_segment(part, part_at_start, ids); });
  });

  if (add_special) ids.insert(ids.end(), spec_.suffix_ids.begin(), spec_.suffix_ids.end());
  return ids;
}

template <class OnText>
void BpeTokenizer::split_on_added_tokens(std::string_view text, bool at_start, const AddedTokenTable& table,
                                         std::vector<TokenId>& ids, OnText on_text) const {
  // The leftmost match wins, and the longest among those starting at the same byte.
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size() && !table.empty()) {
    const AddedToken* match = nullptr;
    size_t match_size = 0;
    for (const auto& [content, index] : table[static_cast<unsigned char>(text[pos])]) {
      if (text.compare(pos, content.size(), content) != 0) continue;
      const AddedToken& token = spec_.added_tokens[index];
      if (token.single_word) {
        size_t before_start = 0, after = pos + content.size();
        const auto before = code_point_before(text, pos, before_start);
        const auto next = after < text.size() ? next_code_point(text, after) : std::nullopt;
        if ((before && is_word_character(*before)) || (next && is_word_character(*next))) continue;
      }
      match = &token;
      match_size = content.size();
      break;
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    size_t match_begin = pos, match_end = pos + match_size;
    if (match->lstrip) {
      size_t start = 0;
      while (match_begin > segment_start) {
        const auto cp = code_point_before(text, match_begin, start);
        if (!cp || !is_white_space(*cp) || start < segment_start) break;
        match_begin = start;
      }
    }
    if (match->rstrip) {
      while (match_end < text.size()) {
        size_t cursor = match_end;
        const auto cp = next_code_point(text, cursor);
        if (!cp || !is_white_space(*cp)) break;
        match_end = cursor;
      }
    }
    if (match_begin > segment_start) {
      on_text(text.substr(segment_start, match_begin - segment_start), at_start && segment_start == 0);
    }
    ids.push_back(match->id);
    segment_start = pos = match_end;
  }
  if (segment_start < text.size()) on_text(text.substr(segment_start), at_start && segment_start == 0);
}

void BpeTokenizer::encode_segment(std::string_view text, bool at_start, std::vector<TokenId>& ids) const {
  std::vector<Segment> words{{std::string(text), at_start}};
  if (spec_.pre_tokenizer) spec_.pre_tokenizer->pre_tokenize(words);
  for (const Segment& word : words) {
    if (!word.text.empty()) encode_word(word.text, ids);
  }
}

std::optional<BpeTokenizer::Merge> BpeTokenizer::find_merge(TokenId left, TokenId right, const std::string& left_text,
                                                            const std::string& right_text) const {
  if (spec_.merge_order == MergeOrder::Rank) {
    if (left < 0 || right < 0) return std::nullopt;
    const auto it = merges_.find(pair_key(left, right));
    if (it == merges_.end()) return std::nullopt;
    return it->second;
  }
  const auto it = vocab_.find(left_text + right_text);
  if (it == vocab_.end()) return std::nullopt;
  return Merge{-static_cast<double>(spec_.scores[it->second]), it->second};
}

void BpeTokenizer::append_byte_tokens(std::string_view bytes, std::vector<TokenId>& ids) const {
  for (unsigned char byte : bytes) {
    if (byte_ids_[byte] >= 0) {
      ids.push_back(byte_ids_[byte]);
    } else if (spec_.unknown_id) {
      ids.push_back(*spec_.unknown_id);
    }
  }
}

void BpeTokenizer::encode_word(const std::string& word, std::vector<TokenId>& ids) const {
  if (spec_.ignore_merges) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }

  // Symbols start as single characters. A character outside the vocabulary becomes byte
  // tokens or the unknown token here, unless the fallback waits until after merging.
  struct Symbol {
    TokenId id;  // -1: not in the vocabulary (only with byte_fallback_after_merges)
    std::string text;
    bool unknown = false;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t start = pos;
    pos += utf8_sequence_length(static_cast<unsigned char>(word[pos]));
    std::string character = word.substr(start, pos - start);
    if (const auto it = vocab_.find(character); it != vocab_.end()) {
      symbols.push_back({it->second, std::move(character)});
      continue;
    }
    if (spec_.byte_fallback_after_merges) {
      symbols.push_back({-1, std::move(character)});
      continue;
    }
    const bool all_bytes_known = std::all_of(character.begin(), character.end(),
                                             [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; });
    if (spec_.byte_fallback && all_bytes_known) {
      for (unsigned char byte : character) symbols.push_back({byte_ids_[byte], byte_piece(byte)});
    } else if (spec_.unknown_id) {
      if (spec_.fuse_unknown && !symbols.empty() && symbols.back().unknown) {
        symbols.back().text += character;
      } else {
        symbols.push_back({*spec_.unknown_id, std::move(character), true});
      }
    }
    // NOTE: without an unknown token such a character is dropped, as tokenizers' BPE does.
  }

  // Merge the best pair (lowest priority, leftmost on ties) until none is left. Symbols
  // form a linked list and candidate pairs wait in a min-heap, so a word of n characters
  // costs O(n log n): SentencePiece vocabularies without a pre-tokenizer see whole texts
  // as one word. A heap entry is stale once either symbol has merged since it was pushed.
  const size_t count = symbols.size();
  std::vector<size_t> next(count), previous(count);
  std::vector<uint32_t> version(count, 0);
  std::vector<bool> alive(count, true);
  for (size_t i = 0; i < count; ++i) {
    next[i] = i + 1;
    previous[i] = i == 0 ? count : i - 1;
  }
  struct Candidate {
    double priority;
    size_t left, right;
    uint32_t left_version, right_version;
    TokenId merged_id;
    bool operator>(const Candidate& other) const {
      return priority != other.priority ? priority > other.priority : left > other.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto push_pair = [&](size_t left) {
    if (left >= count) return;
    const size_t right = next[left];
    if (right >= count) return;
    const Symbol &a = symbols[left], &b = symbols[right];
    if (a.unknown || b.unknown) return;
    if (const auto merge = find_merge(a.id, b.id, a.text, b.text)) {
      queue.push({merge->priority, left, right, version[left], version[right], merge->merged_id});
    }
  };
  for (size_t i = 0; i + 1 < count; ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (!alive[top.left] || !alive[top.right] || next[top.left] != top.right || version[top.left] != top.left_version ||
        version[top.right] != top.right_version) {
      continue;
    }
    Symbol& merged = symbols[top.left];
    merged.id = top.merged_id;
    merged.text += symbols[top.right].text;
    ++version[top.left];
    alive[top.right] = false;
    next[top.left] = next[top.right];
    if (next[top.left] < count) previous[next[top.left]] = top.left;
    push_pair(previous[top.left]);
    push_pair(top.left);
  }
  std::vector<Symbol> merged_symbols;
  for (size_t i = 0; i < count; i = next[i]) merged_symbols.push_back(std::move(symbols[i]));
  symbols = std::move(merged_symbols);

  for (const Symbol& symbol : symbols) {
    if (symbol.id >= 0) {
      ids.push_back(symbol.id);
    } else {
      append_byte_tokens(symbol.text, ids);
    }
  }
}

std::string BpeTokenizer::token_piece(TokenId id) const {
  check_id(id);
  return spec_.pieces[id];
}

std::string BpeTokenizer::token_bytes(TokenId id) const {
  check_id(id);
  if (const auto it = added_index_.find(id); it != added_index_.end()) return spec_.added_tokens[it->second].content;
  const std::string& piece = spec_.pieces[id];
  if (spec_.piece_encoding == PieceEncoding::ByteLevel) {
    std::string bytes;
    size_t pos = 0;
    while (pos < piece.size()) {
      const auto cp = next_code_point(piece, pos);
      const auto byte = cp ? unicode_to_byte(*cp) : std::nullopt;
      if (!byte) return piece;  // not a byte-level string: its own UTF-8
      bytes += static_cast<char>(*byte);
    }
    return bytes;
  }
  if (piece.size() == 6 && piece.starts_with("<0x") && piece.back() == '>') {
    for (int byte = 0; byte < 256; ++byte) {
      if (byte_ids_[byte] == id) return std::string(1, static_cast<char>(byte));
    }
  }
  if (spec_.piece_encoding == PieceEncoding::Raw) return piece;
  std::string bytes;
  for (size_t pos = 0; pos < piece.size();) {
    if (piece.compare(pos, 3, "\xE2\x96\x81") == 0) {
      bytes += ' ';
      pos += 3;
    } else {
      bytes += piece[pos++];
    }
  }
  return bytes;
}

std::string BpeTokenizer::decode(const std::vector<TokenId>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    check_id(id);
    if (skip_special && special_[id]) continue;
    if (const auto it = added_normalized_content_.find(id); it != added_normalized_content_.end()) {
      tokens.push_back(it->second);
    } else if (const auto added = added_index_.find(id); added != added_index_.end()) {
      tokens.push_back(spec_.added_tokens[added->second].content);
    } else {
      tokens.push_back(spec_.pieces[id]);
    }
  }
  std::string text;
  if (spec_.decoder) {
    spec_.decoder->decode(tokens);
    for (const std::string& token : tokens) text += token;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text += tokens[i];
    }
  }
  return text;
}

std::vector<TokenId> BpeTokenizer::stop_ids() const {
  std::vector<TokenId> ids;
  if (spec_.eos_id) ids.push_back(*spec_.eos_id);
  for (TokenId id : spec_.extra_stop_ids) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

bool BpeTokenizer::is_special(TokenId id) const { return id >= 0 && id < vocab_size() && special_[id] != 0; }

std::optional<TokenId> BpeTokenizer::find_token(std::string_view piece) const {
  const auto it = all_pieces_.find(std::string(piece));
  if (it == all_pieces_.end()) return std::nullopt;
  return it->second;
}

}  // namespace stepdown::text
