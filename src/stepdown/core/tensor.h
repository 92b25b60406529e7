#pragma once
// A read-only view of one tensor's bytes, usually inside a memory-mapped model file.
//
// Shapes are written outermost first, as in PyTorch and safetensors: a linear weight is
// (rows, cols) = (out_features, in_features), each row contiguous, so y (rows) = W @ x (cols).
// GGUF lists dimensions innermost first (ne[0] = cols); io/ reverses them on load.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "stepdown/core/dtype.h"

namespace stepdown {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // Innermost dimension: the length of one row.
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  // Product of all but the innermost dimension.
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  size_t row_bytes() const { return dtype_bytes(dtype, cols()); }
  const std::byte* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
};

// "[576, 49152]" for messages.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace stepdown
