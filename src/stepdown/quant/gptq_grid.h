#pragma once
// Quantization grids of the formats GPTQ writes: a group's stored scale (and min) chosen
// with the format's own rule, then codes for one value at a time on that fixed grid, and
// the packing of codes and grids into the format's bytes. GPTQ needs this split because
// it quantizes a group column by column, and each column's error changes the columns
// after it.
//
//   format               group   scale rule (values x of the group)       value
//   q8_0                 32      d = f16(absmax / 127)                    d * q, q in [-127, 127]
//   q4_0, q5_0           32      d = f16(x[argmax |x|] / -8 or -16)       d * q, q in [-8, 7] or [-16, 15]
//   q4_1, q5_1           32      d = f16((max - min) / 15 or 31),         d * q + m, q in [0, 15] or [0, 31]
//                                m = f16(min)
//   int8, int8-w8a8      row     s = absmax / 127 (f32)                   s * q, q in [-127, 127]
//   int8-g128            128     d = f16(absmax / 127)                    d * q, q in [-127, 127]
//   int4-g{32,64,128}    G       d = f16(absmax / 7)                      d * q, q in [-7, 7]
//   int4-g*-asym         G       d = f16((max - min) / 15), m = f16(min)  d * q + m, q in [0, 15]
//   int3-g{64,128}       G       d = f16(absmax / 3)                      d * q, q in [-3, 3]
//   int3-g*-asym         G       d = f16((max - min) / 7), m = f16(min)   d * q + m, q in [0, 7]
//
// stepdown's own formats (int8 and below) use rtn_int.h's group functions
// (choose_group_params, quantize_code, dequantize_code, pack_group), so GPTQ and RTN share
// one definition of their grids and layouts.
// The scale rules are the ones RTN uses (rtn_legacy.cpp, rtn_int.cpp). Codes here are the
// nearest code to x on the stored grid, so a legacy block can differ from RTN's in a
// code where RTN rounds against the unrounded scale. value() computes each value in f32
// exactly as kernels::dequantize_row decodes it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "stepdown/core/dtype.h"

namespace stepdown::quant {

// The stored parameters of one group: value = scale * code + min (min is 0 for symmetric
// formats).
struct GroupGrid {
  float scale = 0.0f;
  float min = 0.0f;
};

class GptqGrid {
 public:
  // The grid of `dtype`, or nullopt for a format GPTQ cannot write (floats, k-quants, fp8).
  static std::optional<GptqGrid> for_dtype(DType dtype);

  DType dtype() const { return dtype_; }
  // Elements per group in a row of `cols` (cols itself for per-row formats).
  int64_t group_size(int64_t cols) const { return group_ > 0 ? group_ : cols; }
  int min_code() const { return min_code_; }
  int max_code() const { return max_code_; }

  // The grid RTN would choose for the n values x.
  GroupGrid choose(const float* x, int64_t n) const;
  // The grid of choose(p * x) for the shrink p in {1, 0.98, ..., 0.70} that gives the
  // least weighted squared rounding error sum_i importance_i (x_i - q(x_i))^2 (GPTQ takes
  // H_ii as the importance). Clipping a group's largest values this way rounds the rest on
  // a finer grid, which pays at 3 and 4 bits; p = 1 is RTN's grid, so the error is never
  // above choose()'s.
  GroupGrid choose_clipped(const float* x, const double* importance, int64_t n) const;
  // The code in [min_code, max_code] nearest to x on `grid` (0 when the scale is 0).
  int code(float x, const GroupGrid& grid) const;
  // The f32 value that the format's decoder gives for `code` on `grid`.
  float value(int code, const GroupGrid& grid) const;

  // dst (dtype_bytes(dtype, cols)) = one row from its codes (cols) and the grids of its
  // groups (cols / group_size(cols)).
  void pack_row(std::span<const int8_t> codes, std::span<const GroupGrid> grids, std::byte* dst) const;

 private:
  GptqGrid(DType dtype, int64_t group, int min_code, int max_code, bool affine, bool signed_max)
      : dtype_(dtype), group_(group), min_code_(min_code), max_code_(max_code), affine_(affine),
        signed_max_(signed_max) {}

  DType dtype_;
  int64_t group_;      // 0 for per-row
  int min_code_;
  int max_code_;
  bool affine_;        // scale and min (q4_1, q5_1, *-asym)
  bool signed_max_;    // q4_0, q5_0: scale from the signed value of largest magnitude
};

}  // namespace stepdown::quant
