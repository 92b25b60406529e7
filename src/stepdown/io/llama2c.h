#pragma once
// llama2.c checkpoints (Karpathy's run.c format): the legacy header of seven int32 values
// followed by fp32 weights, and the version-1 header ("ak42" magic, 256-byte header).
#include <filesystem>

#include "stepdown/io/model_file.h"

namespace stepdown::io {

// True when the file starts like a llama2.c checkpoint (either header).
bool looks_like_llama2c(std::span<const std::byte> head);

// Opens a llama2.c checkpoint, mapping its weights to GGUF tensor names and its header to
// llama.* metadata (rope layout interleaved).
ModelFile open_llama2c(const std::filesystem::path& path);
// The same for a file the caller has already mapped; the result keeps `file` alive.
ModelFile open_llama2c(std::shared_ptr<MappedFile> file);

}  // namespace stepdown::io
