#include "stepdown/quant/llama2c_vocab.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "stepdown/core/error.h"

namespace stepdown::quant {
namespace {

// llama.cpp's llama_token_type values (llama-vocab.h).
constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeByte = 6;

bool is_byte_piece(const std::string& piece) {
  return piece.size() == 6 && piece.starts_with("<0x") && piece.back() == '>';
}

}  // namespace

void embed_llama2c_tokenizer(const std::filesystem::path& tokenizer_bin, int64_t vocab_size, io::Metadata& metadata) {
  std::ifstream in(tokenizer_bin, std::ios::binary);
  if (!in) raise<IoError>("{}: cannot open tokenizer file", tokenizer_bin.string());
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t offset = 4;  // int32 max_token_length
  const auto read = [&](void* dst, size_t n, int64_t token) {
    if (offset + n > bytes.size()) {
      raise<FormatError>("{}: token {} at offset {}: expected {} more bytes, the file has {}",
                         tokenizer_bin.string(), token, offset, n, bytes.size());
    }
    std::memcpy(dst, bytes.data() + offset, n);
    offset += n;
  };

  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int64_t id = 0; id < vocab_size; ++id) {
    float score;
    int32_t length;
    read(&score, 4, id);
    read(&length, 4, id);
    if (length < 0) raise<FormatError>("{}: token {} has negative length {}", tokenizer_bin.string(), id, length);
    std::string piece(static_cast<size_t>(length), '\0');
    read(piece.data(), piece.size(), id);

    int32_t type = kTypeNormal;
    if (id == 0) {
      type = kTypeUnknown;
      piece = "<unk>";
    } else if (id == 1 || id == 2) {
      type = kTypeControl;
      piece = id == 1 ? "<s>" : "</s>";
    } else if (is_byte_piece(piece)) {
      type = kTypeByte;
    } else {
      std::string spm;
      for (char c : piece) spm += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
      piece = std::move(spm);
    }
    tokens.push_back(std::move(piece));
    scores.push_back(score);
    types.push_back(type);
  }
  metadata.set_string("tokenizer.ggml.model", "llama");
  metadata.set_string_array("tokenizer.ggml.tokens", std::move(tokens));
  metadata.set_f32_array("tokenizer.ggml.scores", scores);
  metadata.set_i32_array("tokenizer.ggml.token_type", types);
  metadata.set_u32("tokenizer.ggml.unknown_token_id", 0);
  metadata.set_u32("tokenizer.ggml.bos_token_id", 1);
  metadata.set_u32("tokenizer.ggml.eos_token_id", 2);
}

}  // namespace stepdown::quant
