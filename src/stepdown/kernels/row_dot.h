#pragma once
// Fused row kernels behind matvec and matmul: dot products of stored weight rows with a
// tile of f32 token vectors, decoding each block in registers (never a whole row to f32).
// Internal to kernels/; the model calls matvec and matmul.
#include <cstdint>

#include "stepdown/kernels/matmul.h"

namespace stepdown::kernels {

// Tokens one call of dot_rows handles at most: each weight vector loaded is multiplied into
// this many accumulators, so prefill reads a weight row once per tile of tokens.
inline constexpr int64_t kMaxTokenTile = 8;

// For r in [row_begin, row_end) and t < n_tokens (1 <= n_tokens <= kMaxTokenTile):
//   y[t * y_stride + r] = W (rows, cols)[r] . x[t * w.cols .. (t + 1) * w.cols)
// with x (n_tokens, cols). Weights are decoded exactly as dequantize_row decodes them; only
// the order of the f32 summation differs from a sequential sum. Throws InvalidArgument for
// INT8_W8A8, INT8_OUTLIER and FP8_E4M3_A8, whose kernels quantize x (matvec and matmul).
void dot_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens, float* y,
              int64_t y_stride);

// The halves of dot_rows: plain float formats (F32, F16, BF16) and ggml block formats.
void dot_rows_float(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                    float* y, int64_t y_stride);
void dot_rows_blocks(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                     float* y, int64_t y_stride);
// stepdown's own formats with f32 tokens (INT8, INT8_G128, INT4 groups, FP8_E4M3); not
// INT8_W8A8, which matvec and matmul send to the integer kernel in int8_int8.h.
void dot_rows_stepdown(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t n_tokens,
                       float* y, int64_t y_stride);

}  // namespace stepdown::kernels
