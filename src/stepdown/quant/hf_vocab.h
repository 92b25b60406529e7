#pragma once
// Converts a byte-level BPE tokenizer.json (GPT-2, Llama 3, SmolLM2, Qwen style) into GGUF
// tokenizer.ggml.* metadata (model "gpt2"), with tokenizer_config.json from the same folder
// for the BOS/EOS tokens, add_bos_token and the chat template.
#include <filesystem>

#include "stepdown/io/metadata.h"

namespace stepdown::quant {

// Sets tokenizer.ggml.model, pre, tokens, token_type, merges, bos/eos ids, add_bos_token
// and tokenizer.chat_template. tokenizer.ggml.pre is "llama-bpe" for Llama 3's split
// regex and "gpt2" for a plain ByteLevel pre-tokenizer.
// Throws Unsupported for tokenizers that are not byte-level BPE (SentencePiece-style BPE
// needs scores that tokenizer.json does not store), and FormatError on a malformed file.
void embed_tokenizer_json(const std::filesystem::path& tokenizer_json, io::Metadata& metadata);

}  // namespace stepdown::quant
