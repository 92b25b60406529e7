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
//   INT3_G{64,128}              f16 d; u8 hi[G/8]; u8 lo[G/4].           w = d * (c - 4)
//     (G, 2 + 3G/8 B):
//   INT3_G{64,128}_ASYM         f16 d, f16 m; u8 hi[G/8]; u8 lo[G/4].    w = d * c + m
//     (G, 4 + 3G/8 B):
//   INT8_OUTLIER (per row):     f32 scale; f32 value[8]; u16 column[8]; int8 q[cols]
//                               (int8_outlier.h)                         w = scale * q, or value at a column
//   FP8_E4M3_A8 (per row):      f32 act_scale; f32 scale; u8 code[cols]  w = scale * e4m3(code)
//                               (fp8_static_act.h)
//
// A 3-bit code c of group element e (0 <= e < G) is split into two bit planes, so a vector
// of consecutive elements decodes with one load per plane and no straddling fields:
//   low two bits:  bits 2k..2k+1 of lo[e % (G/4)], where k = e / (G/4)
//   high bit:      bit e % 8 of hi[e / 8] (the hi plane is a little-endian bit array)
//   c = low | (high << 2)
//
// Int8 codes are in [-127, 127]: -128 is never written, because the W8A8 kernel negates
// codes. Symmetric INT4 codes are written in [-7, 7] (nibbles 1..15); nibble 0 (-8) decodes
// but is never produced. Symmetric INT3 codes likewise are written in [-3, 3] (c = 1..7). FP8 codes 0x7f and 0xff are NaN and are never produced either.
//
// Each value is computed in f32 with one rounding per operation, in the order written
// above; dequantize_row and the fused kernels give the same f32 weights bit for bit.
#include <cstddef>
#include <cstdint>

#include "stepdown/core/dtype.h"

namespace stepdown::kernels {

// Group layout of the INT8_G128, INT4 and INT3 formats.
struct GroupLayout {
  int64_t group = 0;     // elements per block
  int64_t bytes = 0;     // bytes per block
  int bits = 0;          // 8, 4 or 3
  bool has_min = false;  // asymmetric: f16 min after the f16 scale

  // Offset of the codes (the hi plane for 3 bits) after the f16 scale and min.
  int64_t codes_offset() const { return has_min ? 4 : 2; }
};

// The 3-bit code of element e of an INT3 group whose planes start at `planes` (hi, then lo).
inline int int3_code(const uint8_t* planes, int64_t group, int64_t e) {
  const uint8_t* lo = planes + group / 8;
  const int low = (lo[e % (group / 4)] >> (2 * (e / (group / 4)))) & 3;
  const int high = (planes[e / 8] >> (e % 8)) & 1;
  return low | (high << 2);
}

// The group layout of `dtype`, or a layout with group == 0 for per-row formats.
GroupLayout group_layout(DType dtype);

// dst (n) = decoded row of any stepdown format (src points at the row header, if any).
void dequantize_row_stepdown(DType dtype, const std::byte* src, float* dst, int64_t n);

}  // namespace stepdown::kernels
