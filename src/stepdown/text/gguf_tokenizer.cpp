// The tokenizer stored in GGUF metadata (tokenizer.ggml.*), as llama.cpp writes it:
// "gpt2" byte-level BPE vocabularies with merges, and "llama" SentencePiece vocabularies
// with scores and byte tokens.
#include <unordered_map>

#include "stepdown/core/error.h"
#include "stepdown/io/metadata.h"
#include "stepdown/text/bpe_tokenizer.h"

namespace stepdown::text {
namespace {

// tokenizer.ggml.token_type values.
enum GgufTokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The pre-tokenizer that llama.cpp runs for each tokenizer.ggml.pre value of a byte-level
// vocabulary, in tokenizer.json's terms.
std::unique_ptr<PreTokenizer> byte_level_pre_tokenizer(const std::string& pre) {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "dbrx" || pre == "smaug-bpe") {
    steps.push_back(make_split_pre_tokenizer(kLlama3Pattern, SplitBehavior::Isolated, false));
    steps.push_back(make_byte_level_pre_tokenizer(false, false));
  } else if (pre == "qwen2") {
    steps.push_back(make_split_pre_tokenizer(kQwen2Pattern, SplitBehavior::Isolated, false));
    steps.push_back(make_byte_level_pre_tokenizer(false, false));
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
    steps.push_back(make_digits_pre_tokenizer(true));
    steps.push_back(make_byte_level_pre_tokenizer(false, true));
  } else if (pre == "gpt2" || pre == "default" || pre.empty()) {
    steps.push_back(make_byte_level_pre_tokenizer(false, true));
  } else {
    raise<Unsupported>(
        "GGUF tokenizer.ggml.pre '{}' is not supported; supported: gpt2, default, llama-bpe, llama3, qwen2, "
        "smollm, starcoder",
        pre);
  }
  return make_pre_tokenizer_sequence(std::move(steps));
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const io::Metadata& metadata) {
  const std::string model = metadata.require_string("tokenizer.ggml.model");
  const auto tokens = metadata.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty()) raise<FormatError>("GGUF metadata: tokenizer.ggml.tokens is missing or empty");
  const size_t size = tokens->size();
  const std::vector<int64_t> types = metadata.get_int_array("tokenizer.ggml.token_type").value_or(std::vector<int64_t>());
  if (!types.empty() && types.size() != size) {
    raise<FormatError>("GGUF metadata: tokenizer.ggml.token_type has {} entries; expected {} (one per token)",
                       types.size(), size);
  }

  BpeSpec spec;
  spec.pieces = *tokens;
  const auto optional_id = [&](const char* key) -> std::optional<TokenId> {
    const auto id = metadata.get_int(key);
    if (!id) return std::nullopt;
    if (*id < 0 || static_cast<size_t>(*id) >= size) {
      // llama.cpp writes -1 or a large value for "none" in some converters.
      return std::nullopt;
    }
    return static_cast<TokenId>(*id);
  };
  spec.bos_id = optional_id("tokenizer.ggml.bos_token_id");
  spec.eos_id = optional_id("tokenizer.ggml.eos_token_id");
  spec.unknown_id = optional_id("tokenizer.ggml.unknown_token_id");

  // Control and user-defined tokens are matched inside text; only control tokens are
  // special (skipped when decoding with skip_special).
  for (size_t id = 0; id < types.size(); ++id) {
    if (types[id] == kControl || types[id] == kUserDefined) {
      AddedToken token;
      token.content = spec.pieces[id];
      token.id = static_cast<TokenId>(id);
      token.special = types[id] == kControl;
      spec.added_tokens.push_back(std::move(token));
    }
  }

  bool add_bos = false;
  if (model == "gpt2") {
    const auto merges = metadata.get_string_array("tokenizer.ggml.merges");
    if (!merges) raise<FormatError>("GGUF metadata: tokenizer.ggml.merges is missing for a gpt2 tokenizer");
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& merge = (*merges)[i];
      const size_t space = merge.find(' ', 1);
      if (space == std::string::npos) {
        raise<FormatError>("GGUF metadata: tokenizer.ggml.merges[{}] '{}' has no space between its two tokens", i, merge);
      }
      spec.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
    }
    spec.merge_order = MergeOrder::Rank;
    spec.piece_encoding = PieceEncoding::ByteLevel;
    const std::string pre = metadata.get_string("tokenizer.ggml.pre").value_or("default");
    spec.pre_tokenizer = byte_level_pre_tokenizer(pre);
    // Llama 3's tokenizer.json sets ignore_merges: a word found whole in the vocabulary is
    // one token even where the merges would split it.
    spec.ignore_merges = pre == "llama-bpe" || pre == "llama3";
    spec.decoder = make_byte_level_decoder();
    add_bos = metadata.get_bool("tokenizer.ggml.add_bos_token").value_or(false);
  } else if (model == "llama") {
    const auto scores = metadata.get_float_array("tokenizer.ggml.scores");
    if (!scores || scores->size() != size) {
      raise<FormatError>("GGUF metadata: tokenizer.ggml.scores has {} entries; expected {} (one per token)",
                         scores ? scores->size() : 0, size);
    }
    spec.scores.assign(scores->begin(), scores->end());
    spec.merge_order = MergeOrder::Score;
    spec.piece_encoding = PieceEncoding::Metaspace;
    spec.byte_fallback = true;
    spec.byte_fallback_after_merges = true;
    const bool add_space_prefix = metadata.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    std::vector<std::unique_ptr<Normalizer>> normalizers;
    if (add_space_prefix) normalizers.push_back(make_prepend_normalizer("\xE2\x96\x81", false));
    normalizers.push_back(make_replace_normalizer(" ", false, "\xE2\x96\x81"));
    spec.normalizer = make_normalizer_sequence(std::move(normalizers));
    std::vector<std::unique_ptr<Decoder>> decoders;
    decoders.push_back(make_replace_decoder("\xE2\x96\x81", " "));
    decoders.push_back(make_byte_fallback_decoder());
    decoders.push_back(make_fuse_decoder());
    if (add_space_prefix) decoders.push_back(make_strip_decoder(" ", 1, 0));
    spec.decoder = make_decoder_sequence(std::move(decoders));
    spec.decode_strips_leading_space = add_space_prefix;
    add_bos = metadata.get_bool("tokenizer.ggml.add_bos_token").value_or(true);
  } else {
    raise<Unsupported>("GGUF tokenizer.ggml.model '{}' is not supported; supported: gpt2 (byte-level BPE), llama "
                       "(SentencePiece)",
                       model);
  }

  if (add_bos && spec.bos_id) spec.prefix_ids.push_back(*spec.bos_id);
  if (metadata.get_bool("tokenizer.ggml.add_eos_token").value_or(false) && spec.eos_id) {
    spec.suffix_ids.push_back(*spec.eos_id);
  }
  if (const auto eot = optional_id("tokenizer.ggml.eot_token_id")) spec.extra_stop_ids.push_back(*eot);
  for (const AddedToken& token : spec.added_tokens) {
    for (const char* end_of_turn : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|eom_id|>"}) {
      if (token.content == end_of_turn) spec.extra_stop_ids.push_back(token.id);
    }
  }
  return std::make_unique<BpeTokenizer>(std::move(spec));
}

}  // namespace stepdown::text
