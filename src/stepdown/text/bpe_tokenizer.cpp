#include "stepdown/text/bpe_tokenizer.h"

#include <algorithm>

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

bool is_word_character(char32_t cp) {
  if (cp == '_') return true;
  const utf8proc_category_t category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO) ||
         (category >= UTF8PROC_CATEGORY_ND && category <= UTF8PROC_CATEGORY_NO);
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeSpec spec) : spec_(std::move(spec)) {
  const auto size = static_cast<TokenId>(spec_.pieces.size());
  vocab_.reserve(spec_.pieces.size());
  for (TokenId id = 0; id < size; ++id) vocab_.emplace(spec_.pieces[id], id);  // first id wins on duplicates

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
  added_by_first_byte_.resize(256);
  for (size_t i = 0; i < spec_.added_tokens.size(); ++i) {
    const AddedToken& token = spec_.added_tokens[i];
    check_id(token.id);
    added_index_[token.id] = i;
    if (token.special) special_[token.id] = 1;
    if (spec_.match_added_tokens && !token.content.empty()) {
      added_by_first_byte_[static_cast<unsigned char>(token.content[0])].push_back(i);
    }
  }
  for (auto& candidates : added_by_first_byte_) {
    std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
      return spec_.added_tokens[a].content.size() > spec_.added_tokens[b].content.size();
    });
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

  // Added tokens cut the text into segments; the leftmost match wins, the longest among
  // those starting at the same byte.
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* match = nullptr;
    for (size_t index : added_by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const AddedToken& token = spec_.added_tokens[index];
      if (text.compare(pos, token.content.size(), token.content) != 0) continue;
      if (token.single_word) {
        size_t before_start = 0, after = pos + token.content.size();
        const auto before = code_point_before(text, pos, before_start);
        const auto next = after < text.size() ? next_code_point(text, after) : std::nullopt;
        if ((before && is_word_character(*before)) || (next && is_word_character(*next))) continue;
      }
      match = &token;
      break;
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    size_t match_begin = pos, match_end = pos + match->content.size();
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
    encode_segment(std::string(text.substr(segment_start, match_begin - segment_start)), segment_start == 0, ids);
    ids.push_back(match->id);
    segment_start = pos = match_end;
  }
  encode_segment(std::string(text.substr(segment_start)), segment_start == 0, ids);

  if (add_special) ids.insert(ids.end(), spec_.suffix_ids.begin(), spec_.suffix_ids.end());
  return ids;
}

void BpeTokenizer::encode_segment(std::string text, bool at_start, std::vector<TokenId>& ids) const {
  if (text.empty()) return;
  std::vector<Segment> words{{std::move(text), at_start}};
  if (spec_.normalizer) spec_.normalizer->normalize(words[0]);
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

  // Merge the best pair (lowest priority, leftmost on ties) until none is left. Each
  // merge recomputes only the two pairs next to it.
  std::vector<std::optional<Merge>> pair_merges(symbols.size() > 0 ? symbols.size() - 1 : 0);
  const auto refresh = [&](size_t i) {
    if (i + 1 >= symbols.size()) return;
    const Symbol &left = symbols[i], &right = symbols[i + 1];
    pair_merges[i] = (left.unknown || right.unknown) ? std::nullopt : find_merge(left.id, right.id, left.text, right.text);
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) refresh(i);
  while (symbols.size() > 1) {
    size_t best = pair_merges.size();
    for (size_t i = 0; i < pair_merges.size(); ++i) {
      if (pair_merges[i] && (best == pair_merges.size() || pair_merges[i]->priority < pair_merges[best]->priority)) {
        best = i;
      }
    }
    if (best == pair_merges.size()) break;
    symbols[best].id = pair_merges[best]->merged_id;
    symbols[best].text += symbols[best + 1].text;
    symbols.erase(symbols.begin() + static_cast<ptrdiff_t>(best) + 1);
    pair_merges.erase(pair_merges.begin() + static_cast<ptrdiff_t>(best));
    refresh(best);
    if (best > 0) refresh(best - 1);
  }

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
    const auto it = added_index_.find(id);
    tokens.push_back(it != added_index_.end() ? spec_.added_tokens[it->second].content : spec_.pieces[id]);
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
  const auto it = vocab_.find(std::string(piece));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

}  // namespace stepdown::text
