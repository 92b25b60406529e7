#pragma once
// The tokenizer interface shared by every vocabulary type. Implementations: byte-level
// BPE (GPT-2, Llama 3, SmolLM2) and SentencePiece-style BPE with byte fallback (Llama 2,
// Mistral, Gemma, llama2.c).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stepdown::io {
class Metadata;
}

namespace stepdown::text {

using TokenId = int32_t;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids for `text`. Added and special tokens written in the text are matched.
  // With add_special, BOS/EOS are added as the tokenizer's configuration says
  // (tokenizer.json post-processor, add_bos_token, GGUF tokenizer.ggml.add_bos_token).
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special) const = 0;

  // Raw bytes of one token as it appears in decoded text (byte-fallback tokens give one
  // byte, so a piece may be part of a UTF-8 character).
  virtual std::string token_bytes(TokenId id) const = 0;
  // The vocabulary's own string for the token ("Ġthe", "▁the", "<0x0A>").
  virtual std::string token_piece(TokenId id) const = 0;

  // Text for a whole sequence, as HF tokenizers' decode(ids, skip_special_tokens).
  virtual std::string decode(const std::vector<TokenId>& ids, bool skip_special) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual std::optional<TokenId> bos_id() const = 0;
  virtual std::optional<TokenId> eos_id() const = 0;
  // Ids that end generation (EOS, end-of-turn tokens such as <|im_end|> or <|eot_id|>).
  virtual std::vector<TokenId> stop_ids() const = 0;
  virtual bool is_special(TokenId id) const = 0;
  // The id of a token given by its exact vocabulary string, if present.
  virtual std::optional<TokenId> find_token(std::string_view piece) const = 0;
  // Whether decode() drops the leading space of the text (SentencePiece's dummy prefix);
  // StreamDecoder does the same for the first piece it emits.
  virtual bool decode_strips_leading_space() const { return false; }
};

// Loads tokenizer.json, with tokenizer_config.json from the same folder when present.
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& path);
// Builds a tokenizer from tokenizer.json text and optional tokenizer_config.json text
// (empty when absent); `source` names them in error messages.
std::unique_ptr<Tokenizer> parse_tokenizer_json(std::string_view tokenizer_json, std::string_view config_json,
                                                std::string_view source);
// Loads the vocabulary stored in a GGUF file's tokenizer.ggml.* metadata.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const io::Metadata& metadata);
// Loads a llama2.c tokenizer.bin (max token length, then score, length and bytes per token).
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& path);
// Picks the loader from the file: tokenizer.json, tokenizer.bin, or a GGUF file.
std::unique_ptr<Tokenizer> load_tokenizer_file(const std::filesystem::path& path);

// Turns a stream of token ids into text without ever emitting part of a UTF-8 character:
// bytes of an incomplete character wait for the next token.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Text that became complete with this token (may be empty). Special tokens (BOS, end
  // of turn) give no text.
  std::string push(TokenId id);
  // Whatever is still held back, with invalid bytes replaced by U+FFFD.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace stepdown::text
