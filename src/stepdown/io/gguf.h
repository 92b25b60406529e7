#pragma once
// GGUF v2 and v3 reading (format: ggml's docs/gguf.md). Every metadata value type is
// read, arrays nested to any depth; tensor data starts at the next multiple of
// general.alignment (default 32) after the tensor infos. Tensors in stepdown's container
// (gguf_container.h) come back in their stepdown DType and logical shape.
#include <filesystem>
#include <span>

#include "stepdown/io/model_file.h"

namespace stepdown::io {

// True when the file starts with the "GGUF" magic.
bool looks_like_gguf(std::span<const std::byte> head);

ModelFile open_gguf(const std::filesystem::path& path);
// The same for a file the caller has already mapped; the result keeps `file` alive.
ModelFile open_gguf(std::shared_ptr<MappedFile> file);

// Parses GGUF bytes that the caller keeps alive: the tensors point into `bytes` and the
// result owns no mapping. `path` only names the file in messages. Used by open_gguf and
// by the fuzz entry.
ModelFile read_gguf(std::span<const std::byte> bytes, const std::filesystem::path& path);

}  // namespace stepdown::io
