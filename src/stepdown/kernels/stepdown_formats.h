#pragma once
// Layouts and scalar decoding of stepdown's own weight formats, which GGUF lacks. Every
// format is a per-row layout, so WeightMatrix {dtype, data, rows, cols, row_stride}
// describes it: per-row scales sit in a row header (DTypeInfo::row_header_bytes), group
// scales inside fixed-size blocks as in ggml. All fields are little-endian; f16 is IEEE
// binary16.
//
//   INT8, INT8_W8A8 (per row):  f32 scale; int8 q[cols].                 w = scale * q
//   INT8_G128 (128, 130 B):     f16 d; int8 q[128].                      w = d * q
//   INT4_G{32,64,128}           f16 d; u8 qs[G/2]. Byte j stores element j in its low
//     (G, 2 + G/2 B):           nibble and element j + G/2 in its high nibble.
//                                                                        w = d * (nib - 8)
//   INT4_G{32,64,128}_ASYM      f16 d, f16 m; u8 qs[G/2] as above.       w = d * nib + m
//     (G, 4 + G/2 B):
//   FP8_E4M3 (per row):         f32 scale; u8 code[cols] (OCP E4M3).     w = scale * e4m3(code)
//   INT8_OUTLIER (per row):     f32 scale; f32 value[8]; u16 column[8]; int8 q[cols]
//                               (int8_outlier.h)                         w = scale * q, or value at a column
//
// Int8 codes are in [-127, 127]: -128 is never written, because the W8A8 kernel negates
// codes. Symmetric INT4 codes are written in [-7, 7] (nibbles 1..15); nibble 0 (-8) decodes
// but is never produced. FP8 codes 0x7f and 0xff are NaN and are never produced either.
//
// Each value is computed in f32 with one rounding per operation, in the order written
// above; dequantize_row and the fused kernels give the same f32 weights bit for bit.
#include <cstddef>
#include <cstdint>

#include "stepdown/core/dtype.h"

namespace stepdown::kernels {

// Group layout of the INT8_G128 and INT4 formats.
struct GroupLayout {
  int64_t group = 0;     // elements per block
  int64_t bytes = 0;     // bytes per block
  int bits = 0;          // 8 or 4
  bool has_min = false;  // asymmetric: f16 min after the f16 scale
};

// The group layout of `dtype`, or a layout with group == 0 for per-row formats.
GroupLayout group_layout(DType dtype);

// dst (n) = decoded row of any stepdown format (src points at the row header, if any).
void dequantize_row_stepdown(DType dtype, const std::byte* src, float* dst, int64_t n);

}  // namespace stepdown::kernels
