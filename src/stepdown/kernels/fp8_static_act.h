#pragma once
// FP8_E4M3_A8: FP8 E4M3 weights multiplied with activations rounded to E4M3 under one
// static scale per tensor (W8A8-FP8 with calibrated activation scales, emulated in f32).
//
//   row: f32 act_scale; f32 scale; u8 code[cols] (OCP E4M3)          (8-byte header)
//   w[j] = scale * e4m3(code[j])                                     as FP8_E4M3
//
// act_scale comes first, so the bytes from offset 4 on are an FP8_E4M3 row and the kernel
// reuses the FP8_E4M3 dot product. Every row of a matrix stores the same act_scale, because
// the kernels see rows, not tensors: 4 bytes per row more than FP8_E4M3, 0.7% of a 576-wide
// row and 0.3% of a 1536-wide one.
//
// Product, per token t and row r:
//   xq[j]   = e4m3(clamp(x[t][j] / act_scale, -448, 448))    rounded to nearest, ties to even
//   y[t][r] = scale[r] * act_scale * sum_j e4m3(code[r][j]) * xq[j], summed in f32
// so an activation beyond +-448 * act_scale is clipped to that bound, and one of magnitude
// at most 2^-10 * act_scale becomes 0.
#include <cstddef>
#include <cstdint>

#include "stepdown/core/thread_pool.h"
#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {

// The activation scale stored at the start of an FP8_E4M3_A8 row.
float read_fp8_a8_act_scale(const std::byte* row);

// dst (n) = the decoded weights of one row, as FP8_E4M3 decodes them.
void dequantize_row_fp8_a8(const std::byte* src, float* dst, int64_t n);

// xq (n) = x (n) / act_scale rounded to E4M3 and decoded back to f32 (the values, without
// the scale). NaN stays NaN.
void quantize_activations_e4m3(const float* x, int64_t n, float act_scale, float* xq);

// Y (n_tokens, rows) = X (n_tokens, cols) @ W^T for W in FP8_E4M3_A8, threads over rows,
// on the vectorized FP8_E4M3 dot product; matvec and matmul call this for FP8_E4M3_A8. It
// multiplies scale into each weight before the dot and act_scale after it, so it rounds
// differently from the reference, within f32 summation error. Throws InvalidArgument when
// rows store different activation scales or one that is not finite and positive.
void matmul_fp8_a8(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// The same product with plain scalar loops, one thread, in the order written above: the
// reference for the fast kernel.
void matmul_fp8_a8_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);

}  // namespace stepdown::kernels
