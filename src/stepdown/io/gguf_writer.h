#pragma once
// GGUF v3 writing (format: ggml's docs/gguf.md): every metadata value type, tensor data
// aligned to general.alignment (32 unless the metadata sets another power of two), written
// under a temporary name and renamed into place only when complete (core/atomic_file.h).
// Tensors in stepdown's own formats go into the container described in gguf_container.h.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "stepdown/core/dtype.h"
#include "stepdown/io/metadata.h"

namespace stepdown::io {

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first, as in TensorView; reversed on disk
};

// Produces the bytes of tensor `index`; called once per tensor, in order, so a caller can
// quantize one tensor at a time. Must return exactly rows * dtype_bytes(dtype, cols) bytes.
using GgufTensorSource = std::function<std::vector<std::byte>(size_t index)>;

// Writes `metadata` and the tensors to `path`. The container keys (gguf_container.h) are
// the writer's own: any in `metadata` are dropped, and the keys for the stepdown-format
// tensors in `tensors` are written instead. Throws InvalidArgument on a tensor whose
// size does not match its type and shape, or on a non-power-of-two general.alignment;
// on any error the target is left untouched.
void write_gguf(const std::filesystem::path& path, const Metadata& metadata,
                const std::vector<GgufTensorInfo>& tensors, const GgufTensorSource& source);

}  // namespace stepdown::io
