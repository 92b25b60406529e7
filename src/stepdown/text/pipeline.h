#pragma once
// The steps of a Hugging Face tokenizer pipeline that stepdown implements, each as a small
// class: normalizers rewrite a text segment, pre-tokenizers cut it into words, decoders
// turn token strings back into text. Loaders (tokenizer.json, GGUF, tokenizer.bin) build
// the same steps, so every vocabulary runs through one implementation.
#include <memory>
#include <string>
#include <vector>

namespace stepdown::text {

// One segment of input text between added tokens. `at_start` is true when it begins at
// offset 0 of the whole input, because Metaspace's prepend_scheme "first" and the
// non-legacy dummy prefix apply only there.
struct Segment {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(Segment& segment) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits each word of `words` further (or rewrites it, for ByteLevel and Metaspace).
  virtual void pre_tokenize(std::vector<Segment>& words) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings in place; the decoded text is their concatenation.
  virtual void decode(std::vector<std::string>& tokens) const = 0;
};

// The way Split keeps the matches (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
enum class PrependScheme { Always, First, Never };

// Normalizers.
std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prefix, bool only_at_start);
std::unique_ptr<Normalizer> make_replace_normalizer(std::string pattern, bool pattern_is_regex, std::string content);
// form: "NFC", "NFKC", "NFD" or "NFKD"; throws InvalidArgument for another name.
std::unique_ptr<Normalizer> make_unicode_normalizer(const std::string& form);
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right);
std::unique_ptr<Normalizer> make_lowercase_normalizer();
std::unique_ptr<Normalizer> make_normalizer_sequence(std::vector<std::unique_ptr<Normalizer>> steps);

// Pre-tokenizers.
std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(const std::string& regex, SplitBehavior behavior, bool invert);
// The GPT-2 pattern when use_regex; always maps each byte to its GPT-2 code point.
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);
std::unique_ptr<PreTokenizer> make_digits_pre_tokenizer(bool individual_digits);
std::unique_ptr<PreTokenizer> make_metaspace_pre_tokenizer(std::string replacement, PrependScheme scheme, bool split);
std::unique_ptr<PreTokenizer> make_pre_tokenizer_sequence(std::vector<std::unique_ptr<PreTokenizer>> steps);

// Decoders.
std::unique_ptr<Decoder> make_byte_level_decoder();
std::unique_ptr<Decoder> make_replace_decoder(std::string pattern, std::string content);
std::unique_ptr<Decoder> make_byte_fallback_decoder();
std::unique_ptr<Decoder> make_fuse_decoder();
std::unique_ptr<Decoder> make_strip_decoder(std::string content, size_t start, size_t stop);
std::unique_ptr<Decoder> make_metaspace_decoder(std::string replacement, PrependScheme scheme);
std::unique_ptr<Decoder> make_decoder_sequence(std::vector<std::unique_ptr<Decoder>> steps);

// The pre-tokenizer regexes of the vocabularies GGUF names in tokenizer.ggml.pre.
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Qwen 2 and 3: Llama 3's pattern with single digits.
inline constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace stepdown::text
