#pragma once
// Registry of weight formats that the quantizer can produce. Each entry pairs a storage
// DType with a row quantizer, so a new format (stepdown's group-wise INT8/INT4/FP8) is one
// register_quant_format() call in its own file; the model-level loop in quantize_model.cpp
// and the GGUF writer look formats up here and never switch on them.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "stepdown/core/dtype.h"

namespace stepdown::quant {

// dst (row_bytes) = quantized src (n); n is a whole number of blocks (checked by callers).
using QuantizeRowFn = std::function<void(const float* src, std::byte* dst, int64_t n)>;

struct QuantFormat {
  std::string name;         // lower-case scheme-facing name: "q4_0", "f16"
  DType dtype;              // storage type written to the file
  int64_t block_elems = 1;  // a row must be a whole number of these
  int64_t block_bytes = 4;
  QuantizeRowFn quantize_row;
  // Registered format that plan_tensors uses when a row is not a whole number of blocks.
  // Empty for the ggml formats, which follow the fallbacks listed in scheme.h.
  std::string fallback;
};

// Adds a format; throws InvalidArgument when the name is already taken.
void register_quant_format(QuantFormat format);
// The format named `name` (case-insensitive), or nullptr.
const QuantFormat* find_quant_format(std::string_view name);
// The format that stores `dtype`, or nullptr.
const QuantFormat* find_quant_format(DType dtype);
// Names of every registered format, in registration order.
std::vector<std::string> quant_format_names();

}  // namespace stepdown::quant
