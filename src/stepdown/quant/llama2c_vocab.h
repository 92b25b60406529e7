#pragma once
// Converts a llama2.c tokenizer.bin into GGUF tokenizer.ggml.* metadata (SentencePiece
// "llama" model), so a GGUF written from a llama2.c checkpoint carries its vocabulary.
#include <cstdint>
#include <filesystem>

#include "stepdown/io/metadata.h"

namespace stepdown::quant {

// Reads `vocab_size` entries of tokenizer.bin (int32 max_token_length, then per token:
// f32 score, int32 length, bytes) and sets tokenizer.ggml.model = "llama", tokens (with
// ' ' written back as U+2581, since llama2.c's export replaced it), scores, token_type
// (0 unknown, 1 and 2 control, "<0xHH>" byte, the rest normal) and the bos/eos/unk ids.
// Throws FormatError naming the file and token index on a truncated file.
void embed_llama2c_tokenizer(const std::filesystem::path& tokenizer_bin, int64_t vocab_size, io::Metadata& metadata);

}  // namespace stepdown::quant
