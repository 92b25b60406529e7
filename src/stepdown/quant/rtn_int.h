#pragma once
// Round-to-nearest quantizers for stepdown's integer formats (layouts in
// kernels/stepdown_formats.h). Codes are round(x / scale) with ties away from zero
// (std::round), computed against the scale as stored (f16 group scales are rounded first),
// then clamped to the code range. A row or group whose absmax is zero or below FLT_MIN
// (all zero or subnormal) gets scale 0 and code 0 everywhere, so it decodes to exact zeros.
//
//   INT8, INT8_W8A8:   scale = absmax(row) / 127 (f32), codes in [-127, 127]
//   INT8_G128:         d = f16(absmax(group) / 127), codes in [-127, 127]
//   INT4_G*:           d = f16(absmax(group) / 7), codes in [-7, 7] stored as nibble - 8
//   INT4_G*_ASYM:      d = f16((max - min) / 15), m = f16(min), codes in [0, 15]
//
// Row functions expect finite input and n a whole number of groups; quantize_tensor_stepdown
// checks both for a whole tensor.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "stepdown/core/dtype.h"

namespace stepdown::quant {

// dst (dtype_bytes(INT8, n)) = src (n) in INT8 (also the layout of INT8_W8A8).
void quantize_row_int8(const float* src, std::byte* dst, int64_t n);
// dst = src (n) in INT8_G128 or one of the INT4 group formats.
void quantize_row_int_groups(DType dtype, const float* src, std::byte* dst, int64_t n);

// Quantizes one row into any stepdown format (the integer ones here, FP8_E4M3 in fp8.h).
void quantize_row_stepdown(DType dtype, const float* src, std::byte* dst, int64_t n);

// W (rows, cols) f32 -> rows * dtype_bytes(dtype, cols) bytes in a stepdown format.
// Throws InvalidArgument naming `tensor_name` when cols is not a multiple of the group
// (with both numbers), or when an element is NaN or infinite (with its row and column).
std::vector<std::byte> quantize_tensor_stepdown(std::string_view tensor_name, DType dtype,
                                                std::span<const float> data, int64_t rows, int64_t cols);

}  // namespace stepdown::quant
