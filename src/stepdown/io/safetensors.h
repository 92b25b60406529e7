#pragma once
// safetensors files: an 8-byte little-endian header length, a JSON object mapping tensor
// names to {"dtype", "shape", "data_offsets"} (plus an optional "__metadata__" object of
// strings), then the tensor bytes. Offsets count from the end of the header.
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "stepdown/core/mapped_file.h"
#include "stepdown/core/tensor.h"

namespace stepdown::io {

struct SafetensorsFile {
  std::filesystem::path path;
  // Tensors in data-offset order, pointing into `mapping` (or the caller's bytes).
  std::vector<TensorView> tensors;
  // The "__metadata__" object.
  std::map<std::string, std::string> metadata;
  std::shared_ptr<MappedFile> mapping;
};

// Maps and parses one .safetensors file. Reads dtypes F32, F16 and BF16; any other
// dtype raises Unsupported naming the tensor.
SafetensorsFile open_safetensors(const std::filesystem::path& path);

// Parses safetensors bytes that the caller keeps alive; `path` only names the file in
// messages.
SafetensorsFile read_safetensors(std::span<const std::byte> bytes, const std::filesystem::path& path);

}  // namespace stepdown::io
