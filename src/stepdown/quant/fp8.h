#pragma once
// FP8 E4M3 quantizer (layout in kernels/stepdown_formats.h): one f32 scale per row,
// scale = absmax(row) / 448, and each value becomes the E4M3 code nearest to x / scale,
// ties to even, after clamping to +-448 (so rounding of the division can never produce
// NaN, E4M3's only out-of-range value). A row whose absmax is zero or below FLT_MIN gets
// scale 0 and zero codes. Input must be finite (quantize_tensor_stepdown checks).
#include <cstddef>
#include <cstdint>

namespace stepdown::quant {

// dst (dtype_bytes(FP8_E4M3, n)) = src (n) in FP8_E4M3.
void quantize_row_fp8(const float* src, std::byte* dst, int64_t n);

// dst (dtype_bytes(FP8_E4M3_A8, n)) = `act_scale`, then src (n) as quantize_row_fp8 writes
// it. Throws InvalidArgument unless act_scale is finite and positive.
void quantize_row_fp8_a8(const float* src, float act_scale, std::byte* dst, int64_t n);

}  // namespace stepdown::quant
