// llama2.c's tokenizer.bin: int32 max_token_length, then for each token a float32 score,
// an int32 byte length and the bytes. Pieces hold real spaces (not "▁"); ids 0, 1, 2 are
// <unk>, BOS and EOS, and raw bytes are the pieces "<0x00>".."<0xFF>".
#include <cstring>

#include "stepdown/core/error.h"
#include "stepdown/core/mapped_file.h"
#include "stepdown/text/bpe_tokenizer.h"

namespace stepdown::text {

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& path) {
  const MappedFile file(path);
  const std::span<const std::byte> bytes = file.bytes();
  size_t offset = 0;
  const auto read = [&](void* out, size_t size, const char* field, size_t token) {
    if (bytes.size() - offset < size) {
      raise<FormatError>("{}: truncated at byte {} reading {} of token {}: needs {} more bytes, file has {}",
                         path.string(), offset, field, token, size, bytes.size() - offset);
    }
    std::memcpy(out, bytes.data() + offset, size);
    offset += size;
  };

  int32_t max_token_length = 0;
  read(&max_token_length, sizeof(max_token_length), "max_token_length", 0);
  if (max_token_length <= 0 || max_token_length > 4096) {
    raise<FormatError>("{}: max_token_length is {}; expected 1..4096", path.string(), max_token_length);
  }

  BpeSpec spec;
  while (offset < bytes.size()) {
    const size_t token = spec.pieces.size();
    float score = 0;
    int32_t length = 0;
    read(&score, sizeof(score), "score", token);
    read(&length, sizeof(length), "length", token);
    if (length < 0 || length > max_token_length) {
      raise<FormatError>("{}: token {} at byte {} has length {}; expected 0..{} (max_token_length)", path.string(), token,
                         offset - sizeof(length), length, max_token_length);
    }
    std::string piece(static_cast<size_t>(length), '\0');
    read(piece.data(), piece.size(), "bytes", token);
    spec.pieces.push_back(std::move(piece));
    spec.scores.push_back(score);
  }
  if (spec.pieces.size() < 3) {
    raise<FormatError>("{}: holds {} tokens; expected at least <unk>, BOS and EOS", path.string(), spec.pieces.size());
  }

  // llama2.c encodes with a dummy-prefix space, looks each character up, falls back to
  // byte tokens, then merges the adjacent pair whose joined piece has the best score.
  spec.merge_order = MergeOrder::Score;
  spec.piece_encoding = PieceEncoding::Raw;
  spec.byte_fallback = true;
  spec.unknown_id = 0;
  spec.match_added_tokens = false;
  spec.normalizer = make_prepend_normalizer(" ", false);
  std::vector<std::unique_ptr<Decoder>> decoders;
  decoders.push_back(make_byte_fallback_decoder());
  decoders.push_back(make_fuse_decoder());
  decoders.push_back(make_strip_decoder(" ", 1, 0));
  spec.decoder = make_decoder_sequence(std::move(decoders));
  spec.decode_strips_leading_space = true;
  for (TokenId id : {0, 1, 2}) spec.added_tokens.push_back({spec.pieces[id], id, true});
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.prefix_ids = {1};
  return std::make_unique<BpeTokenizer>(std::move(spec));
}

}  // namespace stepdown::text
