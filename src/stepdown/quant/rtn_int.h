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
//   INT3_G*:           d = f16(absmax(group) / 3), codes in [-3, 3] stored as c - 4
//   INT3_G*_ASYM:      d = f16((max - min) / 7), m = f16(min), codes in [0, 7]
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
// dst = src (n) in INT8_G128 or one of the INT4 or INT3 group formats.
void quantize_row_int_groups(DType dtype, const float* src, std::byte* dst, int64_t n);

// Quantizes one row into any stepdown format (the integer ones here, FP8_E4M3 in fp8.h).
// Throws InvalidArgument for FP8_E4M3_A8, whose activation scale comes from calibration
// (quantize_row_fp8_a8 in fp8.h).
void quantize_row_stepdown(DType dtype, const float* src, std::byte* dst, int64_t n);

// W (rows, cols) f32 -> rows * dtype_bytes(dtype, cols) bytes in a stepdown format.
// Throws InvalidArgument naming `tensor_name` when cols is not a multiple of the group
// (with both numbers), or when an element is NaN or infinite (with its row and column).
std::vector<std::byte> quantize_tensor_stepdown(std::string_view tensor_name, DType dtype,
                                                std::span<const float> data, int64_t rows, int64_t cols);

// One group at a time, for methods that pick codes column by column under a scale fixed
// beforehand (GPTQ). The functions below accept the integer formats (INT8, INT8_W8A8,
// INT8_G128, INT4_G*, INT3_G*, symmetric and _ASYM) and throw InvalidArgument for others.
// quantize_row_int8 and quantize_row_int_groups are choose_group_params, quantize_code and
// pack_group applied to each group, so both paths write the same bytes.

// Scale (and min) of one group as the file stores them. For the group formats both are
// f16 values held in f32; for INT8 and INT8_W8A8 the group is the whole row and the scale
// is an f32.
struct GroupParams {
  float scale = 0.0f;
  float min = 0.0f;  // asymmetric formats only; 0 otherwise
};

// Elements that share one GroupParams in a row of `cols` values: the format's group, or
// cols for the per-row INT8 formats.
int64_t quant_group_size(DType dtype, int64_t cols);

// The RTN scale (and min) for the n values of one group, by the rules in the table above.
GroupParams choose_group_params(DType dtype, const float* values, int64_t n);

// The code RTN gives x under fixed params: round(x / scale) clamped to [-127, 127],
// [-7, 7] or [-3, 3] for symmetric formats, and round((x - min) / scale) clamped to
// [0, 15] or [0, 7] for _ASYM formats. Scale 0 gives code 0.
int quantize_code(DType dtype, const GroupParams& params, float x);

// The weight that `code` decodes to, bit for bit as dequantize_row decodes it.
float dequantize_code(DType dtype, const GroupParams& params, int code);

// Writes one group: n = quant_group_size codes (as quantize_code returns them) and their
// params, into the format's block (the whole row, header included, for the per-row
// formats). Throws InvalidArgument when a code is out of range, n is not the group size,
// or a group format's scale or min is not exactly an f16 value.
void pack_group(DType dtype, const GroupParams& params, const int* codes, int64_t n, std::byte* dst);

}  // namespace stepdown::quant
