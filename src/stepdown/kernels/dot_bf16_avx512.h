#pragma once
// BF16 weight rows times f32 tokens with AVX512_BF16's VDPBF16PS, which multiplies pairs
// of bf16 values and adds both products to one f32 lane. Highway 1.0.3 cannot emit it, so
// this path is compiled with a target attribute and chosen at run time by dot_rows_float.
//
// Rounding: VDPBF16PS takes bf16 on both sides, so the tokens are rounded to bf16 first
// (VCVTNE2PS2BF16: round to nearest even, input subnormals taken as zero). bf16 keeps 8
// significant bits, so each product w * x carries a relative error of up to 2^-8 on top of
// the f32 summation error: |y - exact| <= (2^-8 + (n + 2) * 2^-24) * sum |w_i x_i|. The
// f32 path of dot_float.cpp multiplies the tokens unrounded.
#include <cstdint>

#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {

// True when this CPU and OS run AVX512F, AVX512BW and AVX512_BF16.
bool cpu_has_avx512_bf16();

// For BF16 W (rows, cols) and x (n_tokens, cols), 1 <= n_tokens <= 8: the contract of
// dot_rows (row_dot.h), with x rounded to bf16. Only when cpu_has_avx512_bf16().
void dot_rows_bf16_avx512(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                          int64_t n_tokens, float* y, int64_t y_stride);

}  // namespace stepdown::kernels
