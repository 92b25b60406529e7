#pragma once
// The one Tokenizer implementation: added-token matching, then per text segment a
// normalizer, a pre-tokenizer and a BPE model, then the post-processor's special tokens;
// decoding runs a decoder chain. The loaders for tokenizer.json, GGUF vocabularies and
// llama2.c tokenizer.bin each fill a BpeSpec.
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "stepdown/text/pipeline.h"
#include "stepdown/text/tokenizer.h"

namespace stepdown::text {

// A token matched verbatim inside text before normalization (tokenizer.json
// "added_tokens", GGUF control and user-defined tokens).
struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool special = false;  // skipped by decode(skip_special = true)
  bool lstrip = false;  // the match swallows whitespace to its left
  bool rstrip = false;  // ... and to its right
  bool normalized = false;
  bool single_word = false;  // matches only when not inside a word
};

// How the BPE model picks the next pair to merge.
enum class MergeOrder {
  // The lowest rank in the merges list (tokenizer.json, GGUF "gpt2" vocabularies).
  Rank,
  // The highest score of the merged token (llama2.c tokenizer.bin, GGUF "llama"
  // SentencePiece vocabularies).
  Score,
};

// How a vocabulary string maps to the bytes it stands for.
enum class PieceEncoding {
  ByteLevel,  // GPT-2 code points, one per byte
  Metaspace,  // "▁" for a space, <0xNN> for a raw byte
  Raw,  // the bytes themselves, <0xNN> for a raw byte (llama2.c)
};

struct BpeSpec {
  std::vector<std::string> pieces;  // (vocab_size) vocabulary string of each id
  std::vector<float> scores;  // (vocab_size) with MergeOrder::Score, else empty
  std::vector<std::pair<std::string, std::string>> merges;  // with MergeOrder::Rank, in rank order
  MergeOrder merge_order = MergeOrder::Rank;
  PieceEncoding piece_encoding = PieceEncoding::ByteLevel;
  // Characters outside the vocabulary become <0xNN> tokens (else the unknown token).
  bool byte_fallback = false;
  // llama.cpp's SentencePiece tokenizer merges characters first and falls back to bytes
  // only for symbols left outside the vocabulary; tokenizers and llama2.c fall back first.
  bool byte_fallback_after_merges = false;
  std::optional<TokenId> unknown_id;
  bool fuse_unknown = false;  // consecutive unknown characters become one unknown token
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token
  bool match_added_tokens = true;

  std::vector<AddedToken> added_tokens;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;  // null: tokens are joined with spaces, as tokenizers does

  // Post-processor: ids put around the text's ids when encode() has add_special set.
  std::vector<TokenId> prefix_ids;
  std::vector<TokenId> suffix_ids;
  std::optional<TokenId> bos_id;
  std::optional<TokenId> eos_id;
  std::vector<TokenId> extra_stop_ids;
  // Decoding drops one leading space of the text (SentencePiece's dummy prefix).
  bool decode_strips_leading_space = false;
};

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(BpeSpec spec);

  std::vector<TokenId> encode(std::string_view text, bool add_special) const override;
  std::string token_bytes(TokenId id) const override;
  std::string token_piece(TokenId id) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(spec_.pieces.size()); }
  std::optional<TokenId> bos_id() const override { return spec_.bos_id; }
  std::optional<TokenId> eos_id() const override { return spec_.eos_id; }
  std::vector<TokenId> stop_ids() const override;
  bool is_special(TokenId id) const override;
  std::optional<TokenId> find_token(std::string_view piece) const override;
  bool decode_strips_leading_space() const override { return spec_.decode_strips_leading_space; }

 private:
  struct Merge {
    double priority;  // lower merges first
    TokenId merged_id;
  };

  // Appends the ids of one pre-tokenized word.
  void encode_word(const std::string& word, std::vector<TokenId>& ids) const;
  std::optional<Merge> find_merge(TokenId left, TokenId right, const std::string& left_text,
                                  const std::string& right_text) const;
  void append_byte_tokens(std::string_view bytes, std::vector<TokenId>& ids) const;
  void encode_segment(std::string segment, bool at_start, std::vector<TokenId>& ids) const;
  void check_id(TokenId id) const;

  BpeSpec spec_;
  std::unordered_map<std::string, TokenId> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  std::vector<TokenId> byte_ids_;  // (256) id of <0xNN>, or -1
  std::vector<int8_t> special_;  // (vocab_size) 1 for special added tokens
  std::unordered_map<TokenId, size_t> added_index_;  // id -> index in spec_.added_tokens
  std::vector<std::vector<size_t>> added_by_first_byte_;  // (256) added tokens, longest first
};

}  // namespace stepdown::text
