#pragma once
// Hugging Face model directories: config.json (llama, mistral, qwen2, qwen3), one
// model.safetensors or shards listed by model.safetensors.index.json, and tokenizer.json.
#include <filesystem>

#include "stepdown/io/model_file.h"

namespace stepdown::io {

// True when `dir` is a directory with a config.json.
bool looks_like_hf_directory(const std::filesystem::path& dir);

// Maps HF tensor names to GGUF names and config.json fields to GGUF metadata keys
// (rope layout neox).
ModelFile open_hf_directory(const std::filesystem::path& dir);

}  // namespace stepdown::io
